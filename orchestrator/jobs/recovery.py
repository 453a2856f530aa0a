"""Recovery: a job accepted is never lost.

- A running job whose worker stopped renewing its lease (killed, crashed, cut off) goes
  back to the queue; after SHIELD_MAX_ATTEMPTS such losses it fails with a clear error.
- A queued job whose message the queue lost (Redis restarted, enqueue failed) is enqueued
  again once every message in the queue has been delivered and the job is still waiting.
- At start of the in-process queue, a running job whose worker is provably dead (its
  process on this machine is gone) is re-queued at once, and every queued job
  re-enqueued: that queue did not survive the restart. Jobs of workers that may be alive
  (another process sharing the job store, another machine) wait for their lease to expire.

Every step is a compare-and-set in the store, so sweepers in many processes do not clash.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from orchestrator.jobs import metrics
from orchestrator.jobs.queue import JobQueue
from orchestrator.jobs.store import JobStore, utcnow
from orchestrator.jobs.worker import provably_dead
from orchestrator_client.models import JobStatus

log = logging.getLogger(__name__)


def sweep_interval(lease_seconds: float) -> float:
    return min(max(lease_seconds / 3, 0.2), 10.0)


class Sweeper:
    def __init__(
        self,
        store: JobStore,
        queue: JobQueue,
        *,
        lease_seconds: float,
        max_attempts: int,
        local_worker: str | None = None,
    ) -> None:
        self.store = store
        self.queue = queue
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        # This process's own worker is alive as long as this sweeper runs: a lease it
        # missed because the event loop was busy (a slow import, say) is not a dead worker.
        self.local_worker = local_worker

    async def _lost(self, job_id: str, attempts: int) -> None:
        if await self.store.cancel_lost(job_id):
            log.info("job %s: its worker is gone and it was cancelled; marked cancelled", job_id)
            return
        outcome = await self.store.requeue_lost(job_id, attempts, self.max_attempts)
        if outcome is JobStatus.queued:
            log.warning("job %s: its worker is gone; re-queued (attempt %d ran)", job_id, attempts)
            await self.queue.enqueue(job_id)
        elif outcome is JobStatus.failed:
            log.error("job %s: its worker was lost %d times; failed", job_id, attempts)
            job = await self.store.get(job_id)
            if job is not None:
                metrics.JOBS_TOTAL.labels(job.kind.value, JobStatus.failed.value).inc()

    async def recover_at_start(self) -> None:
        """For the in-process queue: the previous process and its queue are gone.

        Another live process may share this job store (two servers on one data dir with
        SHIELD_QDRANT_URL): its running jobs are not ours to take unless its lease lapsed.
        """
        expired = dict(await self.store.expired_leases())
        waiting = 0
        for job_id, attempts, worker in await self.store.running_workers():
            if (
                job_id in expired
                or worker == self.local_worker
                or (worker is not None and provably_dead(worker))
            ):
                await self._lost(job_id, attempts)
            else:
                waiting += 1
        if waiting:
            log.info(
                "%d running job(s) belong to workers that may be alive; they are re-queued "
                "only if their lease expires",
                waiting,
            )
        queued = await self.store.stale_queued(utcnow() + timedelta(days=1))
        for job_id in queued:
            await self.queue.enqueue(job_id)
        await self.store.mark_enqueued(queued)
        if queued:
            log.info("re-enqueued %d queued job(s) from before the restart", len(queued))

    async def sweep_once(self) -> None:
        for job_id, attempts in await self.store.expired_leases(except_worker=self.local_worker):
            await self._lost(job_id, attempts)
        if await self.queue.all_delivered():
            cutoff = utcnow() - timedelta(seconds=self.lease_seconds)
            stale = await self.store.stale_queued(cutoff)
            for job_id in stale:
                log.warning("job %s: queued but its message is gone; enqueued again", job_id)
                await self.queue.enqueue(job_id)
            await self.store.mark_enqueued(stale)
        metrics.observe_counts(await self.store.counts())

    async def run(self, stop: asyncio.Event) -> None:
        interval = sweep_interval(self.lease_seconds)
        while not stop.is_set():
            try:
                await self.sweep_once()
            except Exception as exc:  # the store or the queue is down: try again later
                log.warning("job sweeper: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
