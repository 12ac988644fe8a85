"""Fixtures: the Graph API simulator and the demo number (see tests/numbers/simulator.py)."""

from tests.numbers.simulator import graph_simulator, number, sim, token  # noqa: F401 - fixtures
