"""The job service on SQLite and PostgreSQL: accept, look up, page, wait, cancel."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime

import pytest

from knowledge.errors import InvalidInput
from orchestrator.runtime import OrchestratorRuntime
from orchestrator_client.errors import JobConflict, JobNotFound
from orchestrator_client.models import CrawlRequest, JobStatus
from tests.orchestrator.jobs.conftest import text_request


async def test_submit_persists_a_queued_job_and_get_returns_it(idle: OrchestratorRuntime) -> None:
    job, created = await idle.jobs.submit(text_request("hello", metadata={"team": "a"}))
    assert created
    assert job.status is JobStatus.queued
    assert job.kind.value == "document"
    assert job.attempts == 0
    assert job.created_at.tzinfo is not None and job.created_at.utcoffset() == UTC.utcoffset(None)
    fetched = await idle.jobs.get(job.job_id)
    assert fetched == job
    assert fetched.request["metadata"] == {"team": "a"}


async def test_public_request_hides_uploaded_bytes(idle: OrchestratorRuntime) -> None:
    content = b"\x00\x01secret payload bytes" * 100
    request = text_request("x")
    request.content_base64 = base64.b64encode(content).decode()
    job, _ = await idle.jobs.submit(request)
    for seen in (job, await idle.jobs.get(job.job_id), (await idle.jobs.list()).jobs[0]):
        assert "content_base64" not in seen.request
        assert seen.request["content_bytes"] == len(content)
        assert seen.request["filename"] == "note.txt"
    # The worker still gets the bytes.
    claimed = await idle.store.claim(job.job_id, "w1", 30)
    assert claimed is not None
    assert base64.b64decode(claimed.request["content_base64"]) == content


async def test_invalid_request_is_refused_before_it_is_stored(idle: OrchestratorRuntime) -> None:
    with pytest.raises(InvalidInput, match="reserved"):
        await idle.jobs.submit(text_request("x", metadata={"source": "mine"}))
    assert (await idle.jobs.list()).jobs == []


async def test_unknown_and_malformed_ids_are_not_found(idle: OrchestratorRuntime) -> None:
    for job_id in ("3f0c0b8e-4a4f-4c47-9f8e-0d4f1d1f2a11", "not-a-uuid", "", "../etc"):
        with pytest.raises(JobNotFound, match="No job with id"):
            await idle.jobs.get(job_id)
        with pytest.raises(JobNotFound):
            await idle.jobs.cancel(job_id)


async def test_list_is_newest_first_paged_and_filtered(idle: OrchestratorRuntime) -> None:
    ids = [(await idle.jobs.submit(text_request(f"doc {i}")))[0].job_id for i in range(5)]
    page = await idle.jobs.list(limit=2)
    assert [j.job_id for j in page.jobs] == ids[::-1][:2]
    assert page.next_offset == 2
    rest = await idle.jobs.list(limit=2, offset=2)
    assert [j.job_id for j in rest.jobs] == ids[::-1][2:4]
    last = await idle.jobs.list(limit=2, offset=4)
    assert [j.job_id for j in last.jobs] == [ids[0]]
    assert last.next_offset is None

    await idle.jobs.cancel(ids[1])
    cancelled = await idle.jobs.list(status=JobStatus.cancelled)
    assert [j.job_id for j in cancelled.jobs] == [ids[1]]
    queued = await idle.jobs.list(status=JobStatus.queued, limit=10)
    assert {j.job_id for j in queued.jobs} == set(ids) - {ids[1]}
    assert (await idle.jobs.counts())[JobStatus.queued] == 4

    with pytest.raises(InvalidInput, match="limit"):
        await idle.jobs.list(limit=0)
    with pytest.raises(InvalidInput, match="offset"):
        await idle.jobs.list(offset=-1)


async def test_idempotency_key_returns_the_same_job(idle: OrchestratorRuntime) -> None:
    first, created = await idle.jobs.submit(text_request("same"), idempotency_key="key-1")
    again, created_again = await idle.jobs.submit(text_request("same"), idempotency_key="key-1")
    assert created and not created_again
    assert again.job_id == first.job_id
    with pytest.raises(JobConflict, match="already used for another request"):
        await idle.jobs.submit(text_request("different"), idempotency_key="key-1")
    other, created_other = await idle.jobs.submit(text_request("same"), idempotency_key="key-2")
    assert created_other and other.job_id != first.job_id
    # Without a key, the same request while a job of it is still queued is that job.
    a, created_a = await idle.jobs.submit(text_request("same"))
    assert not created_a and a.job_id == first.job_id
    with pytest.raises(InvalidInput, match="Idempotency-Key"):
        await idle.jobs.submit(text_request("same"), idempotency_key="x" * 300)


async def test_a_retried_request_gets_the_job_still_queued_or_running(
    idle: OrchestratorRuntime,
) -> None:
    store, jobs = idle.store, idle.jobs
    first, created = await jobs.submit(text_request("retried"))
    again, created_again = await jobs.submit(text_request("retried"))
    assert created and not created_again and again.job_id == first.job_id
    # Any difference in source, collection or options is other work.
    other_options, new_options = await jobs.submit(text_request("retried", metadata={"a": "b"}))
    assert new_options and other_options.job_id != first.job_id
    # Running: still that job. The worker's claim is what makes it running.
    assert await store.claim(first.job_id, "w1", 30) is not None
    running, created_running = await jobs.submit(text_request("retried"))
    assert not created_running and running.job_id == first.job_id
    assert running.status is JobStatus.running
    # Being cancelled, or finished: a new request is new work.
    await jobs.cancel(first.job_id)
    after_cancel, created_after_cancel = await jobs.submit(text_request("retried"))
    assert created_after_cancel and after_cancel.job_id != first.job_id
    assert await store.claim(after_cancel.job_id, "w1", 30) is not None
    assert await store.finish(after_cancel.job_id, "w1", JobStatus.succeeded)
    later, created_later = await jobs.submit(text_request("retried"))
    assert created_later and later.job_id not in (first.job_id, after_cancel.job_id)


async def test_identical_requests_at_the_same_moment_make_one_job(
    idle: OrchestratorRuntime,
) -> None:
    results = await asyncio.gather(*(idle.jobs.submit(text_request("burst")) for _ in range(8)))
    assert len({job.job_id for job, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    page = await idle.jobs.list(status=JobStatus.queued, limit=100)
    assert sum(1 for job in page.jobs if job.job_id == results[0][0].job_id) == 1


async def test_concurrent_submits_with_one_key_make_one_job(idle: OrchestratorRuntime) -> None:
    results = await asyncio.gather(
        *(idle.jobs.submit(text_request("race"), idempotency_key="race-key") for _ in range(8))
    )
    assert len({job.job_id for job, _ in results}) == 1
    assert sum(created for _, created in results) == 1


async def test_cancel_in_each_state(idle: OrchestratorRuntime) -> None:
    store, jobs = idle.store, idle.jobs
    # queued -> cancelled at once, and a worker can no longer claim it
    queued, _ = await jobs.submit(text_request("a"))
    cancelled = await jobs.cancel(queued.job_id)
    assert cancelled.status is JobStatus.cancelled and cancelled.finished_at is not None
    assert await store.claim(queued.job_id, "w1", 30) is None
    # already cancelled -> returned as is
    assert (await jobs.cancel(queued.job_id)).updated_at == cancelled.updated_at

    # running -> cancel requested; the worker sees it on its next heartbeat
    running, _ = await jobs.submit(text_request("b"))
    assert await store.claim(running.job_id, "w1", 30) is not None
    asked = await jobs.cancel(running.job_id)
    assert asked.status is JobStatus.running and asked.cancel_requested
    assert await store.heartbeat(running.job_id, "w1", 30) is True

    # succeeded / failed -> conflict
    done, _ = await jobs.submit(text_request("c"))
    assert await store.claim(done.job_id, "w1", 30) is not None
    assert await store.finish(done.job_id, "w1", JobStatus.succeeded)
    with pytest.raises(JobConflict, match="already succeeded"):
        await jobs.cancel(done.job_id)
    failed, _ = await jobs.submit(text_request("d"))
    assert await store.claim(failed.job_id, "w1", 30) is not None
    assert await store.finish(failed.job_id, "w1", JobStatus.failed)
    with pytest.raises(JobConflict, match="already failed"):
        await jobs.cancel(failed.job_id)


async def test_wait_returns_on_change(idle: OrchestratorRuntime) -> None:
    job, _ = await idle.jobs.submit(text_request("watch me"))

    async def start_it() -> None:
        await asyncio.sleep(0.3)
        await idle.store.claim(job.job_id, "w1", 30)

    starter = asyncio.create_task(start_it())
    changed = await idle.jobs.wait(job.job_id, since=job.updated_at, timeout=30)
    await starter
    assert changed.status is JobStatus.running
    assert changed.updated_at > job.updated_at


async def test_wait_sees_changes_made_by_another_process(idle: OrchestratorRuntime) -> None:
    """Polling, not only in-process notification: a second store stands for another process."""
    from orchestrator.jobs.store import JobStore

    other = JobStore(idle.store.url)
    await other.open()
    try:
        job, _ = await idle.jobs.submit(text_request("cross-process"))

        async def claim_elsewhere() -> None:
            await asyncio.sleep(0.3)
            await other.claim(job.job_id, "remote", 30)

        task = asyncio.create_task(claim_elsewhere())
        changed = await idle.jobs.wait(job.job_id, since=job.updated_at, timeout=30)
        await task
        assert changed.status is JobStatus.running
    finally:
        await other.close()


async def test_wait_returns_unchanged_after_timeout(idle: OrchestratorRuntime) -> None:
    job, _ = await idle.jobs.submit(text_request("still"))
    same = await idle.jobs.wait(job.job_id, since=job.updated_at, timeout=0.3)
    assert same.updated_at == job.updated_at and same.status is JobStatus.queued
    older = await idle.jobs.wait(job.job_id, since=datetime(2000, 1, 1, tzinfo=UTC), timeout=10)
    assert older.job_id == job.job_id  # changed since 2000: answers at once


async def test_crawl_requests_are_accepted_without_fetching(idle: OrchestratorRuntime) -> None:
    # Nothing listens on this port: accepting must not touch the network.
    job, created = await idle.jobs.submit(CrawlRequest(url="http://127.0.0.1:9/", max_pages=3))
    assert created and job.kind.value == "crawl" and job.request["max_pages"] == 3
