"""One claimed job on one worker: attempts, lease, progress, cancellation, the final state.

The lease is renewed every lease_seconds/3; a worker that dies stops renewing and the
sweeper (recovery.py) gives the job to another. Cancellation is cooperative (the pipeline
checks at its checkpoints); a pipeline that does not reach one soon is cancelled outright.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter

from knowledge.errors import KnowledgeError
from knowledge.service import KnowledgeService
from orchestrator.errors import JobCancelled, is_transient
from orchestrator.jobs import metrics
from orchestrator.jobs.store import ClaimedJob, JobStore
from orchestrator.pipeline.context import JobContext
from orchestrator.settings import OrchestratorSettings
from orchestrator_client.models import (
    CrawlRequest,
    DocumentRequest,
    IngestRequest,
    JobError,
    JobResult,
    JobStatus,
    Progress,
)

if TYPE_CHECKING:
    from orchestrator.pipeline.convert import Converter

log = logging.getLogger(__name__)

Runner = Callable[[CrawlRequest | DocumentRequest, JobContext], Coroutine[Any, Any, JobResult]]

PROGRESS_INTERVAL = 0.25  # at most ~4 progress writes per second per job
CANCEL_CHECK_INTERVAL = 0.5  # how stale the pipeline's view of cancel_requested may be
ABANDON_SECONDS = 10.0  # how long a timed-out pipeline may take to honour its cancellation
_REQUEST: TypeAdapter[CrawlRequest | DocumentRequest] = TypeAdapter(IngestRequest)


class _Released(Exception):
    """The job is no longer ours (lease lost): stop without writing its state."""


class _AttemptTimedOut(Exception):
    """The attempt ran past SHIELD_JOB_TIMEOUT (not a timeout raised inside the pipeline)."""


def error_of(exc: BaseException, job_id: str) -> JobError:
    if isinstance(exc, KnowledgeError):
        return JobError(code=exc.code, message=str(exc))
    return JobError(
        code="internal",
        message=(
            f"The worker hit an unexpected error ({type(exc).__name__}: {exc}). This is a bug; "
            f"the worker log has the traceback (search for job {job_id})."
        ),
    )


class JobExecution:
    def __init__(
        self,
        claimed: ClaimedJob,
        *,
        store: JobStore,
        settings: OrchestratorSettings,
        service: KnowledgeService,
        converter: Converter,
        runner: Runner,
        worker_id: str,
        on_abandon: Callable[[str, asyncio.Task[JobResult]], None] | None = None,
    ) -> None:
        self.claimed = claimed
        self.job_id = claimed.job_id
        self.store = store
        self.settings = settings
        self.service = service
        self.converter = converter
        self.runner = runner
        self.worker_id = worker_id
        # Told of a pipeline still running after its cancellation, so that the worker can
        # end it before the vector store closes (it may still write there).
        self.on_abandon = on_abandon
        self.attempt = claimed.attempts
        self._cancel = False
        self._cancel_checked = 0.0
        self._lost = False
        self._forced = False
        self._pipeline: asyncio.Task[JobResult] | None = None
        self._progress: Progress | None = None  # not yet written
        self._last = Progress(stage="starting")
        self._progress_written = 0.0
        self._flush: asyncio.Task[None] | None = None
        self._started = time.monotonic()

    # -- what the pipeline sees -----------------------------------------------------------

    async def _report(self, progress: Progress) -> None:
        self._progress = self._last = progress
        wait = PROGRESS_INTERVAL - (time.monotonic() - self._progress_written)
        if wait <= 0:
            await self._write_progress()
        elif self._flush is None or self._flush.done():
            self._flush = asyncio.create_task(self._flush_later(wait))

    async def _flush_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        await self._write_progress()

    async def _write_progress(self) -> None:
        progress, self._progress = self._progress, None
        if progress is None:
            return
        self._progress_written = time.monotonic()
        try:
            await self.store.set_progress(self.job_id, self.worker_id, progress)
        except Exception as exc:  # progress is best effort; the final state is not
            log.warning("job %s: progress not saved (%s)", self.job_id, exc)

    async def _cancel_requested(self) -> bool:
        now = time.monotonic()
        if not self._cancel and now - self._cancel_checked >= CANCEL_CHECK_INTERVAL:
            self._cancel_checked = now
            self._cancel = await self.store.is_cancel_requested(self.job_id)
        return self._cancel

    def request_cancel(self) -> None:
        """Cancel asked in this process: the next checkpoint sees it without a query."""
        self._cancel = True

    # -- the lease ------------------------------------------------------------------------

    async def _keep_lease(self) -> None:
        lease = self.settings.lease_seconds
        cancel_seen: float | None = None
        while True:
            await asyncio.sleep(lease / 3)
            try:
                state = await self.store.heartbeat(self.job_id, self.worker_id, lease)
            except Exception as exc:
                log.warning("job %s: lease not renewed (%s)", self.job_id, exc)
                continue
            if state is None:
                log.warning(
                    "job %s: lease lost (another worker owns it now); stopping", self.job_id
                )
                self._lost = True
                self._stop_pipeline()
                return
            if state or self._cancel:
                self._cancel = True
                now = time.monotonic()
                cancel_seen = cancel_seen or now
                # Give the pipeline one lease period to reach a checkpoint, then stop it.
                if now - cancel_seen >= lease:
                    self._forced = True
                    self._stop_pipeline()

    def _stop_pipeline(self) -> None:
        if self._pipeline is not None and not self._pipeline.done():
            self._pipeline.cancel()

    # -- the attempts ---------------------------------------------------------------------

    async def run(self) -> JobStatus | None:
        """Runs the job to a terminal state; None when it went back to the queue."""
        keeper = asyncio.create_task(self._keep_lease())
        try:
            return await self._attempts()
        except _Released:
            return None
        except asyncio.CancelledError:
            # This worker is stopping: hand the job back unless it finished meanwhile.
            with contextlib.suppress(Exception):
                await asyncio.shield(self.store.release(self.job_id, self.worker_id))
            raise
        finally:
            keeper.cancel()
            if self._flush is not None:
                self._flush.cancel()

    async def _attempts(self) -> JobStatus:
        request = _REQUEST.validate_python(self.claimed.request)
        ctx = JobContext(
            job_id=self.job_id,
            service=self.service,
            settings=self.settings,
            converter=self.converter,
            report=self._report,
            cancel_requested=self._cancel_requested,
        )
        while True:
            try:
                result = await self._one_attempt(request, ctx)
            except _Released:
                raise
            except JobCancelled:
                return await self._finish(JobStatus.cancelled)
            except _AttemptTimedOut:
                return await self._finish(
                    JobStatus.failed,
                    error=JobError(
                        code="timeout",
                        message=(
                            f"The job ran longer than {self.settings.job_timeout:g} s "
                            "(SHIELD_JOB_TIMEOUT). Split the work (fewer pages, smaller "
                            "documents) or raise the limit."
                        ),
                    ),
                )
            except Exception as exc:
                if is_transient(exc) and self.attempt < self.settings.max_attempts:
                    await self._back_off(exc)
                    continue
                if not isinstance(exc, KnowledgeError):
                    log.exception("job %s: unexpected error", self.job_id)
                error = error_of(exc, self.job_id)
                if is_transient(exc):
                    error.message += f" (gave up after {self.attempt} attempts)"
                return await self._finish(JobStatus.failed, error=error)
            else:
                return await self._finish(JobStatus.succeeded, result=result)

    async def _one_attempt(
        self, request: CrawlRequest | DocumentRequest, ctx: JobContext
    ) -> JobResult:
        pipeline = asyncio.create_task(self.runner(request, ctx))
        self._pipeline = pipeline
        try:
            done, _ = await asyncio.wait({pipeline}, timeout=self.settings.job_timeout)
            if not done:
                pipeline.cancel()
                # A pipeline that ignores cancellation is left behind (the worker ends it
                # when it stops) rather than allowed to hold this worker's slot for ever.
                await asyncio.wait({pipeline}, timeout=ABANDON_SECONDS)
                self._abandon(pipeline)
                raise _AttemptTimedOut
            return pipeline.result()
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                pipeline.cancel()
                self._abandon(pipeline)
                raise  # the worker is stopping
            if self._lost:
                raise _Released from None
            if self._forced:
                raise JobCancelled(f"Job {self.job_id} was cancelled.") from None
            raise
        finally:
            self._pipeline = None

    def _abandon(self, pipeline: asyncio.Task[JobResult]) -> None:
        if pipeline.done():
            return
        log.warning("job %s: its pipeline has not ended yet after being cancelled", self.job_id)
        if self.on_abandon is not None:
            self.on_abandon(self.job_id, pipeline)

    async def _back_off(self, exc: BaseException) -> None:
        delay = self.settings.retry_backoff_seconds * 2 ** (self.attempt - 1)
        log.warning(
            "job %s: attempt %d failed (%s); retrying in %.1f s",
            self.job_id,
            self.attempt,
            exc,
            delay,
        )
        self._progress = self._last = Progress(
            stage="retrying", done=self.attempt, total=self.settings.max_attempts
        )
        await self._write_progress()
        deadline = time.monotonic() + delay
        while (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(left, CANCEL_CHECK_INTERVAL))
            if await self._cancel_requested():
                raise JobCancelled(f"Job {self.job_id} was cancelled.")
            if self._lost:
                raise _Released
        if not await self.store.next_attempt(self.job_id, self.worker_id):
            raise _Released
        self.attempt += 1

    async def _finish(
        self,
        status: JobStatus,
        *,
        result: JobResult | None = None,
        error: JobError | None = None,
    ) -> JobStatus:
        if self._flush is not None:
            self._flush.cancel()
        progress = self._last
        if status is JobStatus.succeeded:
            progress = Progress(stage="done", done=progress.done, total=progress.total)
        done = await self.store.finish(
            self.job_id, self.worker_id, status, result=result, error=error, progress=progress
        )
        if not done:
            raise _Released
        kind = self.claimed.kind.value
        metrics.JOBS_TOTAL.labels(kind, status.value).inc()
        metrics.JOB_DURATION.labels(kind).observe(time.monotonic() - self._started)
        log.info("job %s %s after %d attempt(s)", self.job_id, status.value, self.attempt)
        return status
