"""Domain code shared by the MCP server and the orchestrator: embedders and vector stores.

Nothing in this package knows about MCP or HTTP serving; heavy libraries (onnxruntime,
qdrant_client) are imported lazily by the modules that need them.
"""
