"""One claimed job on one worker: its attempts, their time limit, and the final state.

The lease and cancellation live in lease.py, throttled progress in progress.py, the
retry policy in retry.py; this class runs the pipeline under them and records the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter

from knowledge.errors import KnowledgeError
from knowledge.service import KnowledgeService
from orchestrator.database import DatabaseUnavailable
from orchestrator.errors import JobCancelled, is_transient
from orchestrator.jobs import metrics
from orchestrator.jobs.lease import CANCEL_CHECK_INTERVAL, Lease
from orchestrator.jobs.limits import JobLimits
from orchestrator.jobs.progress import ProgressWriter
from orchestrator.jobs.retry import backoff_delay, error_of
from orchestrator.jobs.store import ClaimedJob, JobStore
from orchestrator.pipeline.config import PipelineConfig
from orchestrator.pipeline.context import SOURCE_LOCKS, JobContext
from orchestrator.shared_locks import SharedLocks
from orchestrator_client.models import (
    AnyJobRequest,
    JobError,
    JobRequest,
    JobResult,
    JobStatus,
    Progress,
)

if TYPE_CHECKING:
    from orchestrator.graphrag.service import GraphService
    from orchestrator.pipeline.convert.converter import Converter

log = logging.getLogger(__name__)

Runner = Callable[[JobRequest, JobContext], Coroutine[Any, Any, JobResult]]

ABANDON_SECONDS = 10.0  # how long a timed-out pipeline may take to honour its cancellation
STORE_RETRY_SECONDS = 1.0  # between tries to save a job's state while the store is down
_REQUEST: TypeAdapter[JobRequest] = TypeAdapter(AnyJobRequest)


class _Released(Exception):
    """The job is no longer ours (lease lost): stop without writing its state."""


class _AttemptTimedOut(Exception):
    """The attempt ran past SHIELD_JOB_TIMEOUT (not a timeout raised inside the pipeline)."""


class JobExecution:
    def __init__(
        self,
        claimed: ClaimedJob,
        *,
        store: JobStore,
        limits: JobLimits,
        config: PipelineConfig,
        service: KnowledgeService,
        converter: Converter,
        runner: Runner,
        worker_id: str,
        graph: GraphService | None = None,
        on_abandon: Callable[[str, asyncio.Task[JobResult]], None] | None = None,
    ) -> None:
        self.claimed = claimed
        self.job_id = claimed.job_id
        self.store = store
        self.limits = limits
        self.config = config
        self.service = service
        self.graph = graph
        self.converter = converter
        self.runner = runner
        self.worker_id = worker_id
        # Told of a pipeline still running after its cancellation, so that the worker can
        # end it before the vector store closes (it may still write there).
        self.on_abandon = on_abandon
        self.attempt = claimed.attempts
        self.progress = ProgressWriter(store, self.job_id, worker_id)
        self.lease = Lease(
            store, self.job_id, worker_id, limits.lease_seconds, stop_pipeline=self._stop_pipeline
        )
        self._pipeline: asyncio.Task[JobResult] | None = None
        self._started = time.monotonic()

    def request_cancel(self) -> None:
        """Cancel asked in this process: the next checkpoint sees it without a query."""
        self.lease.cancel = True

    def _stop_pipeline(self) -> None:
        if self._pipeline is not None and not self._pipeline.done():
            self._pipeline.cancel()

    async def run(self) -> JobStatus | None:
        """Runs the job to a terminal state; None when it went back to the queue."""
        keeper = asyncio.create_task(self.lease.keep())
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
            self.progress.stop()

    async def _attempts(self) -> JobStatus:
        request = _REQUEST.validate_python(self.claimed.request)
        ctx = JobContext(
            job_id=self.job_id,
            service=self.service,
            config=self.config,
            converter=self.converter,
            report=self.progress.report,
            cancel_requested=self.lease.cancel_requested,
            graph=self.graph,
            source_locks=SharedLocks(SOURCE_LOCKS, self.store.engine),
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
                            f"The job ran longer than {self.limits.job_timeout:g} s "
                            "(SHIELD_JOB_TIMEOUT). Split the work (fewer pages, smaller "
                            "documents) or raise the limit."
                        ),
                    ),
                )
            except Exception as exc:
                if is_transient(exc) and self.attempt < self.limits.max_attempts:
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

    async def _one_attempt(self, request: JobRequest, ctx: JobContext) -> JobResult:
        pipeline = asyncio.create_task(self.runner(request, ctx))
        self._pipeline = pipeline
        try:
            return await self._await_pipeline(pipeline)
        finally:
            metrics.observe_stages(self.claimed.kind.value, ctx.stages.take())

    async def _await_pipeline(self, pipeline: asyncio.Task[JobResult]) -> JobResult:
        try:
            done, _ = await asyncio.wait({pipeline}, timeout=self.limits.job_timeout)
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
            if self.lease.lost:
                raise _Released from None
            if self.lease.forced:
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
        delay = backoff_delay(self.attempt, self.limits.retry_backoff_seconds)
        log.warning(
            "job %s: attempt %d failed (%s); retrying in %.1f s",
            self.job_id,
            self.attempt,
            exc,
            delay,
        )
        await self.progress.set_now(
            Progress(stage="retrying", done=self.attempt, total=self.limits.max_attempts)
        )
        deadline = time.monotonic() + delay
        while (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(left, CANCEL_CHECK_INTERVAL))
            if await self.lease.cancel_requested():
                raise JobCancelled(f"Job {self.job_id} was cancelled.")
            if self.lease.lost:
                raise _Released
        if not await self._recorded(lambda: self.store.next_attempt(self.job_id, self.worker_id)):
            raise _Released
        self.attempt += 1

    async def _recorded(self, write: Callable[[], Awaitable[bool]]) -> bool:
        """A write of the job's state, tried again while the job store is down: the outcome
        is known and must not be lost to an outage. The lease keeper goes on renewing, so
        once the store is back the job is still ours (the sweeper waits a lease period after
        an outage before judging leases)."""
        warned = False
        while True:
            try:
                return await write()
            except DatabaseUnavailable as exc:
                if self.lease.lost:
                    raise _Released from None
                if not warned:
                    warned = True
                    log.warning(
                        "job %s: its state cannot be saved (%s); retrying every %g s",
                        self.job_id,
                        exc,
                        STORE_RETRY_SECONDS,
                    )
                await asyncio.sleep(STORE_RETRY_SECONDS)

    async def _finish(
        self,
        status: JobStatus,
        *,
        result: JobResult | None = None,
        error: JobError | None = None,
    ) -> JobStatus:
        self.progress.stop()
        progress = self.progress.last
        if status is JobStatus.succeeded:
            progress = Progress(stage="done", done=progress.done, total=progress.total)
        done = await self._recorded(
            lambda: self.store.finish(
                self.job_id, self.worker_id, status, result=result, error=error, progress=progress
            )
        )
        if not done:
            raise _Released
        kind = self.claimed.kind.value
        metrics.JOBS_TOTAL.labels(kind, status.value).inc()
        if error is not None:
            metrics.count_failure(kind, error.code)
        metrics.JOB_DURATION.labels(kind).observe(time.monotonic() - self._started)
        log.info("job %s %s after %d attempt(s)", self.job_id, status.value, self.attempt)
        return status
