"""A local stand-in for Meta's WhatsApp Cloud API, for tests, benchmarks and dry runs.

It never imports Django, so it runs anywhere with `python -m graph_simulator`.
"""
