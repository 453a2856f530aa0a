"""The numbers that bound a job's life on a worker, taken from settings by the composition root."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class JobLimits:
    concurrency: int = 2  # jobs one worker runs at once
    lease_seconds: float = 30.0  # a running job whose worker is silent this long is re-queued
    job_timeout: float = 3600.0  # seconds one attempt may run
    max_attempts: int = 3  # tries per job (transient failures, lost workers)
    retry_backoff_seconds: float = 2.0  # the first retry waits half to all of it; doubles
    shutdown_grace_seconds: float = 30.0  # on stop, how long running jobs may finish
