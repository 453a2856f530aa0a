"""Recovery: a job accepted is never lost.

- A running job whose worker stopped renewing its lease (killed, crashed, cut off) goes
  back to the queue; after SHIELD_MAX_ATTEMPTS such losses it fails with a clear error.
- A queued job whose message the queue lost (Redis restarted, enqueue failed) is enqueued
  again once every message in the queue has been delivered and the job is still waiting.
- At start of the in-process queue, a running job whose worker is provably dead (its
  process on this machine is gone) is re-queued at once, and every queued job
  re-enqueued: that queue did not survive the restart. Jobs of workers that may be alive
  (another process sharing the job store, another machine) wait for their lease to expire.

- After the job store was down, leases are not judged for one lease period: no worker
  could renew its lease during the outage, and those alive renew within a third of one.
- Jobs accepted while Redis was down are enqueued as soon as it answers again.

Every step is a compare-and-set in the store, so sweepers in many processes do not clash.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import timedelta

from orchestrator.database import DatabaseUnavailable
from orchestrator.jobs import metrics
from orchestrator.jobs.queue import JobQueue
from orchestrator.jobs.store import JobStore, utcnow
from orchestrator.jobs.worker import provably_dead
from orchestrator_client.models import JobError, JobKind, JobStatus

log = logging.getLogger(__name__)


def sweep_interval(lease_seconds: float) -> float:
    return min(max(lease_seconds / 3, 0.2), 10.0)


def lost_error(kind: JobKind | None, attempts: int, max_attempts: int) -> JobError:
    """Why a job whose worker kept vanishing failed, in terms that fit the job."""
    what = kind.value if kind in (JobKind.crawl, JobKind.document) and kind else "job"
    hint = {
        "crawl": "Check the worker or server log for why it stopped (a restart, a crash, an "
        "out-of-memory kill), then run the crawl again; pages stored so far are kept, and "
        "a smaller max_pages gives a shorter job.",
        "document": "Check the worker or server log for why it stopped (a restart, a crash, "
        "an out-of-memory kill); a very large document may need more memory or a smaller "
        "file.",
    }.get(what, "Check the worker or server log for why it stopped, then submit it again.")
    return JobError(
        code="worker_lost",
        message=(
            f"The process running this {what} stopped before it finished, {attempts} "
            f"time(s) (SHIELD_MAX_ATTEMPTS={max_attempts}), so it was not tried again. {hint}"
        ),
    )


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
        self._store_down = False
        # Until then (monotonic) expired leases are left alone: the store was just down.
        self._leases_judged_after = 0.0

    async def _lost(self, job_id: str, attempts: int) -> None:
        if await self.store.cancel_lost(job_id):
            log.info("job %s: its worker is gone and it was cancelled; marked cancelled", job_id)
            return
        job = await self.store.get(job_id)
        error = lost_error(job.kind if job else None, attempts, self.max_attempts)
        outcome = await self.store.requeue_lost(job_id, attempts, self.max_attempts, error)
        if outcome is JobStatus.queued:
            log.warning("job %s: its worker is gone; re-queued (attempt %d ran)", job_id, attempts)
            await self.queue.enqueue(job_id)
        elif outcome is JobStatus.failed:
            log.error("job %s: its worker was lost %d times; failed", job_id, attempts)
            if job is not None:
                metrics.JOBS_TOTAL.labels(job.kind.value, JobStatus.failed.value).inc()
                metrics.count_failure(job.kind.value, error.code)

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
        try:
            await self._sweep()
        except DatabaseUnavailable:
            metrics.forget_counts()
            raise
        except Exception:
            # Redis, not the store, failed: the store can still say how many jobs wait
            # (if it cannot, the gauges are NaN and the first failure is the one reported).
            with contextlib.suppress(Exception):
                await self._observe()
            raise
        await self._observe()

    async def _observe(self) -> None:
        try:
            metrics.observe_counts(await self.store.counts())
            metrics.observe_oldest(await self.store.oldest_queued_since(), utcnow())
        except Exception:
            metrics.forget_counts()
            raise

    async def _sweep(self) -> None:
        try:
            expired = await self.store.expired_leases(except_worker=self.local_worker)
        except DatabaseUnavailable:
            self._store_down = True
            raise
        if self._store_down:
            self._store_down = False
            self._leases_judged_after = time.monotonic() + self.lease_seconds
            log.info("job store back; leases are judged again in %.0f s", self.lease_seconds)
        if time.monotonic() >= self._leases_judged_after:
            for job_id, attempts in expired:
                await self._lost(job_id, attempts)
        await self._enqueue_pending()
        if await self.queue.all_delivered():
            cutoff = utcnow() - timedelta(seconds=self.lease_seconds)
            stale = await self.store.stale_queued(cutoff)
            for job_id in stale:
                log.warning("job %s: queued but its message is gone; enqueued again", job_id)
                await self.queue.enqueue(job_id)
            await self.store.mark_enqueued(stale)

    async def _enqueue_pending(self) -> None:
        """Jobs accepted while Redis was down, enqueued once it answers again."""
        if not self.queue.pending():
            return
        await self.queue.ping()
        self.queue.reachable()
        done = await self.queue.flush_pending()
        await self.store.mark_enqueued(done)
        if done:
            log.info("queue reachable again: enqueued %d job(s) accepted meanwhile", len(done))

    async def run(self, stop: asyncio.Event) -> None:
        interval = sweep_interval(self.lease_seconds)
        while not stop.is_set():
            try:
                await self.sweep_once()
            except Exception as exc:  # the store or the queue is down: try again later
                log.warning("job sweeper: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
