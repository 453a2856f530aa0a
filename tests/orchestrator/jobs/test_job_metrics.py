"""Job metrics that need no pipeline run: failure reasons, the oldest queued job's age
(its SQL on SQLite and PostgreSQL), and the series that exist before any job."""

from __future__ import annotations

import time

import pytest
from prometheus_client import REGISTRY

from knowledge.errors import (
    CollectionDamaged,
    CollectionMismatch,
    DataDirInUse,
    DependencyRejected,
    DependencyUnavailable,
    InvalidInput,
    KnowledgeError,
)
from orchestrator.database import DatabaseUnavailable
from orchestrator.errors import ConversionFailed, FetchFailed, StageTimeout
from orchestrator.graphrag.loader import LightRAGConfigError
from orchestrator.jobs import metrics
from orchestrator.jobs.queue import QueueUnavailable
from orchestrator.jobs.recovery import lost_error
from orchestrator.jobs.retry import error_of
from orchestrator.pipeline.crawl.safety import NetworkRefused
from orchestrator.pipeline.netsafety import DnsUnavailable
from orchestrator.runtime import OrchestratorRuntime
from orchestrator_client.errors import JobNotFound
from orchestrator_client.models import JobKind
from tests.orchestrator.jobs.conftest import sweeper_of, text_request


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (InvalidInput("bad"), "invalid_input"),
        (NetworkRefused("loopback"), "invalid_input"),
        (JobNotFound("gone"), "invalid_input"),
        (CollectionMismatch("other model"), "invalid_input"),
        (FetchFailed("HTTP 404"), "invalid_input"),
        (FetchFailed("the site timed out", transient=True), "invalid_input"),
        (ConversionFailed("damaged"), "invalid_input"),
        (DependencyUnavailable("Ollama down"), "dependency"),
        (DependencyRejected("no such model"), "dependency"),
        (DatabaseUnavailable("store down"), "dependency"),
        (QueueUnavailable("Redis down"), "dependency"),
        (DnsUnavailable("EAI_AGAIN"), "dependency"),
        (DataDirInUse("taken"), "dependency"),
        (StageTimeout("conversion took too long"), "timeout"),
        (CollectionDamaged("unreadable"), "internal"),
        (LightRAGConfigError("WORKSPACE set"), "internal"),
        (KnowledgeError("anything"), "internal"),
        (RuntimeError("a bug"), "internal"),
    ],
)
def test_a_failed_job_s_error_has_one_reason(exc: BaseException, reason: str) -> None:
    # The code the worker records for the exception (retry.error_of) is what is classified.
    assert metrics.failure_reason(error_of(exc, "job-id").code) == reason


def test_the_worker_s_own_failures_are_classified() -> None:
    assert metrics.failure_reason("timeout") == "timeout"  # SHIELD_JOB_TIMEOUT
    assert metrics.failure_reason(lost_error(JobKind.crawl, 3, 3).code) == "internal"
    assert metrics.failure_reason("a code from a future version") == "internal"


def gauge(name: str) -> float:
    value = REGISTRY.get_sample_value(name)
    assert value is not None, name
    return value


async def test_oldest_queued_job_age_is_zero_then_bounded_then_zero(
    idle: OrchestratorRuntime,
) -> None:
    await idle.jobs.refresh_gauges()
    assert gauge("oldest_queued_job_age_seconds") == 0

    submitted_after = time.time()
    job, _ = await idle.jobs.submit(text_request("Waiting for a worker."))
    await idle.jobs.refresh_gauges()
    waited = time.time() - submitted_after
    age = gauge("oldest_queued_job_age_seconds")
    assert 0 < age <= waited
    assert gauge("worker_queue_size") == 1

    await idle.jobs.cancel(job.job_id)
    await sweeper_of(idle).sweep_once()  # the sweeper keeps it current between scrapes
    assert gauge("oldest_queued_job_age_seconds") == 0
    assert gauge("worker_queue_size") == 0


async def test_the_oldest_is_the_longest_waiting(idle: OrchestratorRuntime) -> None:
    first, _ = await idle.jobs.submit(text_request("First in line."))
    await idle.jobs.submit(text_request("Second in line."))
    since = await idle.store.oldest_queued_since()
    assert since == first.updated_at


def test_new_series_exist_at_zero_for_every_kind_before_any_job(
    idle: OrchestratorRuntime,
) -> None:
    for kind in JobKind:
        for reason in metrics.FAILURE_REASONS:
            labels = {"kind": kind.value, "reason": reason}
            assert REGISTRY.get_sample_value("job_failures_total", labels) is not None
        for stage in metrics.KIND_STAGES[kind.value]:
            labels = {"kind": kind.value, "stage": stage}
            assert REGISTRY.get_sample_value("job_stage_duration_seconds_count", labels) is not None
    assert REGISTRY.get_sample_value("shield_build_info", {"version": metrics_version()}) == 1


def metrics_version() -> str:
    from importlib.metadata import version

    return version("shield-mcp")
