"""Prometheus metrics of jobs (names fixed by the design: dashboards and alerts use them).

Module-level singletons in the default registry: importing this module twice in one
process registers them once.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from orchestrator_client.models import JobStatus

WORKER_QUEUE_SIZE = Gauge(
    "worker_queue_size", "Jobs accepted and waiting for a worker (status queued)."
)
ACTIVE_JOBS = Gauge("active_jobs", "Jobs a worker is running now (status running).")
JOBS_TOTAL = Counter(
    "jobs_total", "Jobs that reached a terminal state, by kind and status.", ["kind", "status"]
)
JOB_DURATION = Histogram(
    "job_duration_seconds",
    "Time from a worker starting a job to its terminal state, by kind.",
    ["kind"],
    buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)


def observe_counts(counts: dict[JobStatus, int]) -> None:
    WORKER_QUEUE_SIZE.set(counts.get(JobStatus.queued, 0))
    ACTIVE_JOBS.set(counts.get(JobStatus.running, 0))


def declare_kinds(kinds: list[str]) -> None:
    """Create every series at zero, so rate() and dashboards see them before traffic."""
    for kind in kinds:
        JOB_DURATION.labels(kind)
        for status in (JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled):
            JOBS_TOTAL.labels(kind, status.value)
