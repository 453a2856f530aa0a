"""LightRAG benchmarks: storage choice, query latency per mode, ingestion cost, memory."""
