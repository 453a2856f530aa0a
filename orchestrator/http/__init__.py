"""The orchestrator's HTTP API (FastAPI): routes only parse, call the job service, shape."""
