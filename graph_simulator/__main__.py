"""Entry point: `python -m graph_simulator [flags]` (same flags as `manage.py graph_simulator`)."""

from .server import main

main()
