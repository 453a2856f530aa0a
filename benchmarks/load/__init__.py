"""The load benchmark (issue 9): many MCP sessions of mixed calls on both layouts."""
