"""The ingestion pipeline: fetch or convert, chunk, embed, upsert. No HTTP API or MCP here."""
