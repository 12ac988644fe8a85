"""Process and serve plumbing shared by the local simulators (graph_simulator, llm_simulator).

No Django and no product code: the simulators that use it must run on their own.
"""
