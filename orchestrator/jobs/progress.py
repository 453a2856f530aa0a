"""A job's progress, written to the job store at most ~4 times a second.

The pipeline reports as often as is natural (every page, every batch); the last report in
each interval is written, and the latest is kept for the final state.
"""

from __future__ import annotations

import asyncio
import logging
import time

from orchestrator.jobs.store import JobStore
from orchestrator_client.models import Progress

log = logging.getLogger(__name__)

PROGRESS_INTERVAL = 0.25  # seconds between writes of one job's progress


class ProgressWriter:
    def __init__(self, store: JobStore, job_id: str, worker_id: str) -> None:
        self.store = store
        self.job_id = job_id
        self.worker_id = worker_id
        self.last = Progress(stage="starting")  # the latest report, written or not
        self._pending: Progress | None = None  # reported, not yet written
        self._written_at = 0.0
        self._flush: asyncio.Task[None] | None = None

    async def report(self, progress: Progress) -> None:
        self._pending = self.last = progress
        wait = PROGRESS_INTERVAL - (time.monotonic() - self._written_at)
        if wait <= 0:
            await self.write()
        elif self._flush is None or self._flush.done():
            self._flush = asyncio.create_task(self._write_later(wait))

    async def _write_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        await self.write()

    async def write(self) -> None:
        """Write the pending report now (best effort: the final state is what counts)."""
        progress, self._pending = self._pending, None
        if progress is None:
            return
        self._written_at = time.monotonic()
        try:
            await self.store.set_progress(self.job_id, self.worker_id, progress)
        except Exception as exc:
            log.warning("job %s: progress not saved (%s)", self.job_id, exc)

    async def set_now(self, progress: Progress) -> None:
        self._pending = self.last = progress
        await self.write()

    def stop(self) -> None:
        if self._flush is not None:
            self._flush.cancel()
