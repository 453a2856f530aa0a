"""A Redis that hangs (SIGSTOP: connections are accepted, nothing is answered) must not hold
up accepts: the enqueue gives up within its bound, later accepts do not try Redis while it
is known down, and the sweeper enqueues the waiting jobs once Redis answers again."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
import redis

from orchestrator.jobs.queue import JobQueue, QueueUnavailable
from orchestrator.jobs.recovery import Sweeper
from orchestrator.jobs.store import JobStore, NewJob
from orchestrator_client.models import JobKind
from tests.orchestrator.faults.services import RedisServer

pytestmark = pytest.mark.timeout(60)

HANG = 20.0  # guards against a hang only: far above the enqueue bound


async def test_a_frozen_redis_fails_enqueues_promptly_and_jobs_are_queued_when_it_thaws(
    private_redis: RedisServer, tmp_path: Path
) -> None:
    store = JobStore(f"sqlite+aiosqlite:///{tmp_path}/jobs.sqlite3")
    await store.open()
    queue = JobQueue(private_redis.url, queue_name="frozen", lease_seconds=5)
    queue.set_handler(lambda job_id: asyncio.sleep(0))  # a process that runs workers
    await queue.startup()
    sweeper = Sweeper(store, queue, lease_seconds=5, max_attempts=3)
    jobs = [
        (await store.create(NewJob(JobKind.document, {}, {}, f"h{i}", None))).job_id
        for i in range(2)
    ]
    assert private_redis.proc is not None
    os.killpg(private_redis.proc.pid, signal.SIGSTOP)
    try:
        with pytest.raises(QueueUnavailable, match="did not take the job"):
            await asyncio.wait_for(queue.enqueue(jobs[0]), HANG)
        # Known down: the next accept does not wait on Redis again.
        with pytest.raises(QueueUnavailable, match="is down"):
            await asyncio.wait_for(queue.enqueue(jobs[1]), HANG)
        assert queue.pending() == jobs
    finally:
        os.killpg(private_redis.proc.pid, signal.SIGCONT)
    await asyncio.wait_for(sweeper.sweep_once(), HANG)
    assert queue.pending() == []
    assert not queue.known_down
    client = redis.Redis.from_url(private_redis.url)
    try:
        sent = [fields[b"data"].decode() for _, fields in client.xrange("frozen")]
        # Each waiting job has its message; the one whose XADD was still in flight when
        # the enqueue gave up may have two: the job store's claim runs it once all the same.
        assert all(any(job_id in data for data in sent) for job_id in jobs), sent
    finally:
        client.close()
    await queue.shutdown()
    await store.close()
