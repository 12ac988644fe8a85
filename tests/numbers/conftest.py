"""Fixtures: the Graph API simulator (see tests/numbers/simulator.py)."""

from tests.numbers.simulator import graph_simulator, sim  # noqa: F401 - pytest fixtures
