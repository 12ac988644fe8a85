"""Entry point: `python -m llm_simulator [flags]` (same flags as `manage.py llm_simulator`)."""

from .server import main

main()
