"""The `shield-mcp` command."""
