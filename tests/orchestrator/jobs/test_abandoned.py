"""A cancelled pipeline that has not ended yet (job timeout, worker stop) is ended by the
worker's stop, before the runtime closes the vector store it may still write to.

The pipeline here is a stand-in: a real one honours cancellation at its next await, so a
pipeline slow to end (a blocking library call finishing, a cleanup that awaits) cannot be
produced on demand with real crawls or documents. Everything around it is real.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from knowledge.embeddings.local import LocalEmbedder
from orchestrator.jobs import execution, worker
from orchestrator.pipeline.context import JobContext
from orchestrator_client.models import JobResult, JobStatus
from tests.orchestrator.jobs.conftest import SettingsFactory, running, text_request, until


@pytest.fixture
def database_url() -> None:
    return None


class SlowToEnd:
    """A pipeline that swallows the first ``refusals`` cancellations (all of them while
    ``release`` is unset when ``refusals`` is None) and runs until cancelled."""

    def __init__(self, refusals: int | None) -> None:
        self.refusals = refusals
        self.tasks: list[asyncio.Task[Any]] = []
        self.release = asyncio.Event()

    async def __call__(self, request: object, ctx: JobContext) -> JobResult:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.append(task)
        refused = 0
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                refused += 1
                if self.refusals is None:
                    if self.release.is_set():
                        raise
                elif refused > self.refusals:
                    raise


async def test_a_worker_stop_ends_the_pipelines_it_cancelled(
    make_settings: SettingsFactory, local_embedder: LocalEmbedder
) -> None:
    pipeline = SlowToEnd(refusals=1)
    settings = make_settings(shutdown_grace_seconds=0)
    async with running(settings, local_embedder, workers=True, runner=pipeline) as rt:
        job, _ = await rt.jobs.submit(text_request("stopped mid-way"))
        await until(rt.jobs, job.job_id, lambda j: j.status is JobStatus.running)
    assert pipeline.tasks and all(task.done() for task in pipeline.tasks)
    async with running(settings, workers=False) as after:
        assert (await after.jobs.get(job.job_id)).status is JobStatus.queued


async def test_a_timed_out_job_s_pipeline_is_ended_at_stop(
    make_settings: SettingsFactory,
    local_embedder: LocalEmbedder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(execution, "ABANDON_SECONDS", 0.2)  # or the test waits 10 s
    pipeline = SlowToEnd(refusals=1)
    settings = make_settings(job_timeout=0.5)
    async with running(settings, local_embedder, workers=True, runner=pipeline) as rt:
        job, _ = await rt.jobs.submit(text_request("runs past its timeout"))
        done = await until(rt.jobs, job.job_id)
        assert done.status is JobStatus.failed and done.error is not None
        assert done.error.code == "timeout"
        # The job is final, its pipeline not: it is left behind until the worker stops.
        assert not pipeline.tasks[0].done()
    assert all(task.done() for task in pipeline.tasks)


async def test_a_pipeline_that_refuses_to_end_is_logged_and_stop_returns(
    make_settings: SettingsFactory,
    local_embedder: LocalEmbedder,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(worker, "ABANDON_SECONDS", 0.2)  # the bounded wait at stop
    pipeline = SlowToEnd(refusals=None)
    settings = make_settings(shutdown_grace_seconds=0)
    try:
        with caplog.at_level(logging.ERROR, logger="orchestrator.jobs.worker"):
            async with running(settings, local_embedder, workers=True, runner=pipeline) as rt:
                job, _ = await rt.jobs.submit(text_request("never ends"))
                await until(rt.jobs, job.job_id, lambda j: j.status is JobStatus.running)
        assert f"job {job.job_id}: its pipeline ignores cancellation" in caplog.text
    finally:
        pipeline.release.set()
        for task in pipeline.tasks:
            task.cancel()
        await asyncio.wait(pipeline.tasks)
