"""The orchestrator: job API, job store, queue, workers and the ingestion pipeline."""
