"""A running job's lease and cancellation, as its worker sees them.

The lease is renewed every lease_seconds/3; a worker that dies stops renewing and the
sweeper (recovery.py) gives the job to another. Each renewal also reads cancel_requested.
Cancellation is cooperative (the pipeline checks at its checkpoints, through
``cancel_requested``); a pipeline that does not reach one within a lease period is stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from orchestrator.database import DatabaseUnavailable
from orchestrator.jobs.store import JobStore

log = logging.getLogger(__name__)

CANCEL_CHECK_INTERVAL = 0.5  # how stale the pipeline's view of cancel_requested may be


class Lease:
    def __init__(
        self,
        store: JobStore,
        job_id: str,
        worker_id: str,
        lease_seconds: float,
        *,
        stop_pipeline: Callable[[], None],
    ) -> None:
        self.store = store
        self.job_id = job_id
        self.worker_id = worker_id
        self.lease_seconds = lease_seconds
        self.stop_pipeline = stop_pipeline
        self.cancel = False  # someone asked to cancel the job
        self.lost = False  # another worker owns the job now
        self.forced = False  # the pipeline ignored the cancel and was stopped
        self._checked = 0.0

    async def cancel_requested(self) -> bool:
        """What the pipeline's checkpoints ask; reads the store at most every 0.5 s."""
        now = time.monotonic()
        if not self.cancel and now - self._checked >= CANCEL_CHECK_INTERVAL:
            self._checked = now
            # The job store down: the job goes on (a cancel waits for the store).
            with contextlib.suppress(DatabaseUnavailable):
                self.cancel = await self.store.is_cancel_requested(self.job_id)
        return self.cancel

    async def keep(self) -> None:
        """Renew until cancelled (the job ended) or lost."""
        cancel_seen: float | None = None
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                state = await self.store.heartbeat(self.job_id, self.worker_id, self.lease_seconds)
            except Exception as exc:
                log.warning("job %s: lease not renewed (%s)", self.job_id, exc)
                continue
            if state is None:
                log.warning(
                    "job %s: lease lost (another worker owns it now); stopping", self.job_id
                )
                self.lost = True
                self.stop_pipeline()
                return
            if state or self.cancel:
                self.cancel = True
                now = time.monotonic()
                cancel_seen = cancel_seen or now
                # One lease period to reach a checkpoint, then the pipeline is stopped.
                if now - cancel_seen >= self.lease_seconds:
                    self.forced = True
                    self.stop_pipeline()
