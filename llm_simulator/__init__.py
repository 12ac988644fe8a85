"""A local OpenAI-compatible Chat Completions server for tests, the demo and benchmarks."""
