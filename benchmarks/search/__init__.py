"""The search/store suite: shield-mcp against the official peer and a no-op server
(``python -m benchmarks.search.run``; results in benchmarks/results/latest.{json,md})."""
