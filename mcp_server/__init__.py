"""The shield-mcp MCP server: FastMCP tools over the knowledge service."""
