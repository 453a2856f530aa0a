"""The ingestion suite: accept latency, breaker fast-fail, throughput
(``python -m benchmarks.ingestion.run``; results in benchmarks/results/ingest-latest.{json,md})."""
