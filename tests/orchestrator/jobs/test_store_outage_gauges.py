"""A process that loses its job store must not keep exporting the last queue it saw: the
job-store gauges turn NaN (PromQL's max() across processes skips it) until the store
answers again. The store is a real PostgreSQL database that stops accepting connections."""

from __future__ import annotations

import logging
import math
from typing import Any

import pytest
from prometheus_client import REGISTRY

from orchestrator.database import DatabaseUnavailable
from orchestrator.jobs.queue import JobQueue
from orchestrator.jobs.recovery import Sweeper
from orchestrator.jobs.service import JobService
from orchestrator.jobs.store import JobStore, NewJob
from orchestrator_client.models import JobKind, JobRequest
from tests.orchestrator.conftest import allow_connections

pytestmark = pytest.mark.postgres

GAUGES = ("worker_queue_size", "active_jobs", "oldest_queued_job_age_seconds")


def gauges() -> list[float | None]:
    return [REGISTRY.get_sample_value(name) for name in GAUGES]


def all_nan() -> bool:
    return all(value is not None and math.isnan(value) for value in gauges())


async def refuse(store: JobStore, database: str) -> None:
    await store.engine.dispose()  # no pooled connection survives the change below
    allow_connections(database, False)


async def no_validation(_request: JobRequest) -> Any:
    return None


async def test_the_gauges_turn_nan_while_the_job_store_is_lost(
    database: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = JobStore(f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}")
    await store.open()
    try:
        await store.create(NewJob(JobKind.document, {}, {}, "h1", None))
        queue = JobQueue(None)
        sweeper = Sweeper(store, queue, lease_seconds=3600, max_attempts=3)
        jobs = JobService(store, queue, no_validation)

        await sweeper.sweep_once()
        size, active, oldest = gauges()
        assert (size, active) == (1.0, 0.0)
        assert oldest is not None and oldest >= 0.0

        await refuse(store, database)
        with pytest.raises(DatabaseUnavailable):
            await sweeper.sweep_once()
        assert all_nan()

        allow_connections(database, True)
        await jobs.refresh_gauges()
        assert gauges()[:2] == [1.0, 0.0]  # the store's view again, without a restart

        await refuse(store, database)
        with caplog.at_level(logging.WARNING, logger="orchestrator.jobs.service"):
            await jobs.refresh_gauges()  # a scrape still answers
        assert all_nan()
        assert "could not count jobs for /metrics" in caplog.text
    finally:
        allow_connections(database, True)
        await store.close()
