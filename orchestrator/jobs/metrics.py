"""Prometheus metrics of jobs (names fixed by the design: dashboards and alerts use them).

Module-level singletons in the default registry: importing this module twice in one
process registers them once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from prometheus_client import Counter, Gauge, Histogram

import shield_common.build_info  # noqa: F401 - shield_build_info, once per process
from orchestrator_client.models import JobStatus

WORKER_QUEUE_SIZE = Gauge(
    "worker_queue_size", "Jobs accepted and waiting for a worker (status queued)."
)
ACTIVE_JOBS = Gauge("active_jobs", "Jobs a worker is running now (status running).")
OLDEST_QUEUED = Gauge(
    "oldest_queued_job_age_seconds",
    "Seconds the longest-waiting queued job has waited since it entered the queue "
    "(accepted, or handed back by a worker); 0 when none is queued.",
)
JOBS_TOTAL = Counter(
    "jobs_total", "Jobs that reached a terminal state, by kind and status.", ["kind", "status"]
)
JOB_FAILURES = Counter(
    "job_failures_total",
    "Failed jobs by kind and reason: invalid_input (the job's input was bad), dependency "
    "(a dependency down or refusing), timeout (a time limit of the job) or internal.",
    ["kind", "reason"],
)
JOB_DURATION = Histogram(
    "job_duration_seconds",
    "Time from a worker starting a job to its terminal state, by kind.",
    ["kind"],
    buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
JOB_STAGE_DURATION = Histogram(
    "job_stage_duration_seconds",
    "Time one attempt of a job spent in a pipeline stage, by kind and stage (a crawl's "
    "stages overlap: their sum can exceed the job's duration).",
    ["kind", "stage"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)

FAILURE_REASONS = ("invalid_input", "dependency", "timeout", "internal")
STAGES = ("fetch", "convert", "chunk", "embed", "upsert", "lightrag")
# The stages each kind of job goes through (pipeline/stages.py names them).
KIND_STAGES = {
    "crawl": ("fetch", "chunk", "embed", "upsert", "lightrag"),
    "document": ("fetch", "convert", "chunk", "embed", "upsert", "lightrag"),
    "lightrag_rebuild": ("lightrag",),
}
# JobError codes (a KnowledgeError's ``code``, orchestrator/errors.py, recovery.py) by whose
# fault the failure is. Anything not listed (internal, worker_lost, collection_damaged,
# invalid_configuration, ...) is internal.
_INPUT_CODES = frozenset(
    {
        "invalid_input",
        "not_found",
        "conflict",
        "collection_mismatch",
        "fetch_failed",  # the URL the caller named could not be fetched
        "conversion_failed",  # the document is damaged, hostile or too large
    }
)
_DEPENDENCY_CODES = frozenset({"dependency_unavailable", "dependency_rejected", "data_dir_in_use"})


def failure_reason(code: str) -> str:
    """``job_failures_total``'s reason for a failed job's ``error.code``."""
    if code == "timeout":
        return "timeout"
    if code in _INPUT_CODES:
        return "invalid_input"
    if code in _DEPENDENCY_CODES:
        return "dependency"
    return "internal"


def count_failure(kind: str, code: str) -> None:
    JOB_FAILURES.labels(kind, failure_reason(code)).inc()


def observe_stages(kind: str, seconds: Mapping[str, float]) -> None:
    for stage, spent in seconds.items():
        if stage in STAGES:  # names come from the code; checked so a typo cannot add series
            JOB_STAGE_DURATION.labels(kind, stage).observe(spent)


def observe_counts(counts: dict[JobStatus, int]) -> None:
    WORKER_QUEUE_SIZE.set(counts.get(JobStatus.queued, 0))
    ACTIVE_JOBS.set(counts.get(JobStatus.running, 0))


def observe_oldest(queued_since: datetime | None, now: datetime) -> None:
    OLDEST_QUEUED.set(0 if queued_since is None else max(0.0, (now - queued_since).total_seconds()))


def forget_counts() -> None:
    """The job store could not be read: NaN, not the last value, which would keep a backlog
    or an empty queue on the dashboards of a process that lost the store (PromQL's max()
    across processes skips NaN, so the processes that still see the store decide)."""
    for gauge in (WORKER_QUEUE_SIZE, ACTIVE_JOBS, OLDEST_QUEUED):
        gauge.set(float("nan"))


def declare_kinds(kinds: list[str]) -> None:
    """Create every series at zero, so rate() and dashboards see them before traffic."""
    for kind in kinds:
        JOB_DURATION.labels(kind)
        for status in (JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled):
            JOBS_TOTAL.labels(kind, status.value)
        for reason in FAILURE_REASONS:
            JOB_FAILURES.labels(kind, reason)
        for stage in KIND_STAGES.get(kind, ()):
            JOB_STAGE_DURATION.labels(kind, stage)
