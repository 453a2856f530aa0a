"""Compare-and-set in the job store and the sweeper's recovery, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta

import sqlalchemy as sa

from orchestrator.jobs.schema import jobs
from orchestrator.jobs.store import JobStore, utcnow
from orchestrator.runtime import OrchestratorRuntime
from orchestrator_client.models import JobStatus, Progress
from tests.orchestrator.jobs.conftest import dead_worker_id, sweeper_of, text_request, worker_id_of


async def _expire_lease(store: JobStore, job_id: str) -> None:
    """What a killed worker leaves behind: a running job whose lease ran out."""
    async with store.engine.begin() as conn:
        await conn.execute(
            sa.update(jobs)
            .where(jobs.c.id == job_id)
            .values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )


async def test_one_of_many_concurrent_claims_wins(idle: OrchestratorRuntime) -> None:
    job, _ = await idle.jobs.submit(text_request("contested"))
    # Separate stores: separate connection pools, like separate worker processes.
    stores = [JobStore(idle.store.url) for _ in range(4)]
    for store in stores:
        await store.open()
    try:
        claims = await asyncio.gather(
            *(
                s.claim(job.job_id, f"worker-{i}", 30)
                for i, s in enumerate(stores)
                for _ in range(2)
            )
        )
    finally:
        for store in stores:
            await store.close()
    winners = [c for c in claims if c is not None]
    assert len(winners) == 1
    assert winners[0].attempts == 1
    running = await idle.jobs.get(job.job_id)
    assert running.status is JobStatus.running and running.attempts == 1
    assert running.started_at is not None


async def test_only_the_owner_may_write_a_running_job(idle: OrchestratorRuntime) -> None:
    store = idle.store
    job, _ = await idle.jobs.submit(text_request("owned"))
    assert await store.claim(job.job_id, "owner", 30) is not None
    assert await store.heartbeat(job.job_id, "intruder", 30) is None
    assert not await store.set_progress(job.job_id, "intruder", Progress(stage="x"))
    assert not await store.finish(job.job_id, "intruder", JobStatus.succeeded)
    assert await store.set_progress(job.job_id, "owner", Progress(stage="embedding", done=2))
    assert (await idle.jobs.get(job.job_id)).progress.stage == "embedding"
    assert await store.finish(job.job_id, "owner", JobStatus.succeeded)
    # Finished: a late duplicate delivery cannot restart it.
    assert await store.claim(job.job_id, "late", 30) is None


async def test_released_job_is_queued_again_without_spending_an_attempt(
    idle: OrchestratorRuntime,
) -> None:
    job, _ = await idle.jobs.submit(text_request("handed back"))
    assert await idle.store.claim(job.job_id, "stopping-worker", 30) is not None
    assert await idle.store.release(job.job_id, "stopping-worker")
    back = await idle.jobs.get(job.job_id)
    assert back.status is JobStatus.queued and back.attempts == 0
    again = await idle.store.claim(job.job_id, "next-worker", 30)
    assert again is not None and again.attempts == 1


async def test_sweeper_requeues_an_expired_lease_then_fails_after_max_attempts(
    idle: OrchestratorRuntime,
) -> None:
    store = idle.store
    sweeper = sweeper_of(idle)
    job, _ = await idle.jobs.submit(text_request("unlucky"))
    for attempt in range(1, idle.recovery.max_attempts + 1):
        claimed = await store.claim(job.job_id, f"doomed-{attempt}", 30)
        assert claimed is not None and claimed.attempts == attempt
        await sweeper.sweep_once()  # lease still valid: nothing happens
        assert (await idle.jobs.get(job.job_id)).status is JobStatus.running
        await _expire_lease(store, job.job_id)
        await sweeper.sweep_once()
    failed = await idle.jobs.get(job.job_id)
    assert failed.status is JobStatus.failed
    assert failed.error is not None and failed.error.code == "worker_lost"
    assert f"{idle.recovery.max_attempts} time(s)" in failed.error.message
    assert failed.attempts == idle.recovery.max_attempts


async def test_sweeper_requeues_a_lost_job_once(idle: OrchestratorRuntime) -> None:
    job, _ = await idle.jobs.submit(text_request("lost"))
    assert await idle.store.claim(job.job_id, "killed", 30) is not None
    await _expire_lease(idle.store, job.job_id)
    sweepers = [sweeper_of(idle) for _ in range(3)]
    await asyncio.gather(*(s.sweep_once() for s in sweepers))
    back = await idle.jobs.get(job.job_id)
    assert back.status is JobStatus.queued and back.attempts == 1
    # The dead worker wakes up: it no longer owns the job.
    assert await idle.store.heartbeat(job.job_id, "killed", 30) is None


async def test_a_lost_job_that_was_being_cancelled_ends_cancelled(
    idle: OrchestratorRuntime,
) -> None:
    job, _ = await idle.jobs.submit(text_request("cancel me"))
    assert await idle.store.claim(job.job_id, "killed", 30) is not None
    await idle.jobs.cancel(job.job_id)
    await _expire_lease(idle.store, job.job_id)
    await sweeper_of(idle).sweep_once()
    assert (await idle.jobs.get(job.job_id)).status is JobStatus.cancelled


async def test_start_of_the_in_process_queue_requeues_what_the_dead_process_left(
    idle: OrchestratorRuntime,
) -> None:
    left_running, _ = await idle.jobs.submit(text_request("was running"))
    left_queued, _ = await idle.jobs.submit(text_request("was queued"))
    assert await idle.store.claim(left_running.job_id, dead_worker_id(), 3600) is not None
    await sweeper_of(idle).recover_at_start()
    # Re-queued at once, without waiting for the (long) lease.
    assert (await idle.jobs.get(left_running.job_id)).status is JobStatus.queued
    assert (await idle.jobs.get(left_queued.job_id)).status is JobStatus.queued


async def test_start_recovery_takes_only_jobs_whose_worker_is_provably_gone(
    idle: OrchestratorRuntime,
) -> None:
    owners = {
        # May be alive: left to their lease.
        "other machine": (worker_id_of(os.getpid(), host="another-host.example"), True),
        "live process here": (worker_id_of(os.getppid()), True),
        "not a host:pid id": ("some-worker", True),
        # Certainly gone: re-queued at once.
        "ended process here": (dead_worker_id(), False),
        "this process, no such live worker": (worker_id_of(os.getpid()), False),
    }
    ids = {}
    for name, (worker, _) in owners.items():
        job, _ = await idle.jobs.submit(text_request(name))
        assert await idle.store.claim(job.job_id, worker, 3600) is not None
        ids[name] = job.job_id
    lapsed, _ = await idle.jobs.submit(text_request("lease lapsed"))
    assert await idle.store.claim(lapsed.job_id, "some-worker", 3600) is not None
    await _expire_lease(idle.store, lapsed.job_id)

    await sweeper_of(idle).recover_at_start()

    for name, (_, kept) in owners.items():
        job = await idle.jobs.get(ids[name])
        expected = JobStatus.running if kept else JobStatus.queued
        assert job.status is expected, name
    assert (await idle.jobs.get(lapsed.job_id)).status is JobStatus.queued
