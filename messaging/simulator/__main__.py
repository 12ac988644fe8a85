"""Entry point: `python -m messaging.simulator [flags]` (same flags as graph_simulator)."""

from .server import main

main()
