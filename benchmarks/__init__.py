"""The benchmarks: two suites (``benchmarks.search``, ``benchmarks.ingestion``) and, beside
them, what both use. benchmarks/README.md says what each file does."""
