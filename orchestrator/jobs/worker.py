"""A worker: takes job ids from the queue, claims them, runs at most N at once.

Runs inside the orchestrator process with the in-process queue, or as `shield-mcp worker`
processes with Redis. A job that fails (bad file, unreachable site, a bug) fails alone;
nothing a job does stops the worker.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from typing import TYPE_CHECKING, Any

from knowledge.service import KnowledgeService
from orchestrator.database import DatabaseUnavailable
from orchestrator.jobs.execution import ABANDON_SECONDS, JobExecution, Runner
from orchestrator.jobs.limits import JobLimits
from orchestrator.jobs.queue import JobQueue
from orchestrator.jobs.store import JobStore
from orchestrator.pipeline.config import PipelineConfig
from orchestrator_client.models import JobRequest, JobResult
from shield_common import priority

if TYPE_CHECKING:
    from orchestrator.graphrag.service import GraphService
    from orchestrator.pipeline.context import JobContext
    from orchestrator.pipeline.convert.converter import Converter

log = logging.getLogger(__name__)


async def _pipeline(request: JobRequest, ctx: JobContext) -> JobResult:
    from orchestrator.pipeline.dispatch import run_job

    result: JobResult = await run_job(request, ctx)
    return result


# Ids of the workers of this process that are started and not yet stopped: another
# runtime in the same process (tests, two servers embedded in one program) must not take
# their jobs for a dead process's.
_LIVE: set[str] = set()


def _pid_namespace() -> str:
    # Two containers may share a hostname; their pids mean nothing to each other.
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "-"


def new_worker_id() -> str:
    """host:pid:pid-namespace:random; provably_dead() reads the first three."""
    return f"{socket.gethostname()}:{os.getpid()}:{_pid_namespace()}:{uuid.uuid4().hex[:8]}"


def provably_dead(worker_id: str) -> bool:
    """True only when the worker's process has certainly ended: it ran on this machine (same
    host and pid namespace) and its pid is gone, or it is this process and no live worker
    here has that id. Anything else (another machine, an id of another form, a pid in use)
    is left to the lease.
    """
    parts = worker_id.split(":")
    if len(parts) != 4 or not parts[1].isdigit():
        return False
    host, pid_text, namespace, _ = parts
    if host != socket.gethostname() or namespace != _pid_namespace():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return worker_id not in _LIVE
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: the process exists, under another user
        return False
    return False


class Worker:
    def __init__(
        self,
        store: JobStore,
        queue: JobQueue,
        service: KnowledgeService,
        converter: Converter,
        *,
        limits: JobLimits,
        config: PipelineConfig,
        runner: Runner | None = None,
        worker_id: str | None = None,
        own_converter: bool = True,
        graph: GraphService | None = None,
    ) -> None:
        self.store = store
        self.queue = queue
        self.service = service
        # LightRAG, fed by every ingestion job; None when it is off.
        self.graph = graph
        self.limits = limits
        self.config = config
        self.runner = runner or _pipeline
        self.worker_id = worker_id or new_worker_id()
        self._slots = asyncio.Semaphore(limits.concurrency)
        self._tasks: set[asyncio.Task[object]] = set()
        self._running: dict[str, JobExecution] = {}
        # Pipelines cancelled (job timeout, shutdown) that had not ended yet -> their job.
        self._abandoned: dict[asyncio.Task[Any], str] = {}
        self._stop = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None
        # One docling child per worker process (started on first use); closed on stop
        # unless a caller shares its own.
        self._converter = converter
        self._own_converter = own_converter

    async def start(self) -> None:
        _LIVE.add(self.worker_id)
        self.queue.set_handler(self.handle)
        if self.queue.distributed:
            self._listener = asyncio.create_task(
                self.queue.listen(
                    self.limits.concurrency,
                    self._stop,
                    # The receiver waits for its tasks a little longer than we do, so our
                    # own stop() decides what happens to each job.
                    self.limits.shutdown_grace_seconds + 5,
                )
            )
        log.info(
            "worker %s started (%d concurrent jobs, %s queue)",
            self.worker_id,
            self.limits.concurrency,
            "redis" if self.queue.distributed else "in-process",
        )

    def cancel_requested(self, job_id: str) -> None:
        execution = self._running.get(job_id)
        if execution is not None:
            execution.request_cancel()

    async def handle(self, job_id: str) -> None:
        """The queue's task: run this job if it is still queued. Never raises."""
        if self._stop.is_set():
            return
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            async with self._slots:
                if self._stop.is_set():
                    return
                claimed = await self.store.claim(job_id, self.worker_id, self.limits.lease_seconds)
                if claimed is None:  # done, cancelled, or running elsewhere: a stale message
                    return
                execution = JobExecution(
                    claimed,
                    store=self.store,
                    limits=self.limits,
                    config=self.config,
                    service=self.service,
                    converter=self._converter,
                    runner=self.runner,
                    worker_id=self.worker_id,
                    graph=self.graph,
                    on_abandon=self._abandoned_pipeline,
                )
                self._running[job_id] = execution
                try:
                    # Every task the job starts inherits the mark: its embedding runs on
                    # the low-priority thread (shield_common/priority.py).
                    with priority.background():
                        await execution.run()
                finally:
                    self._running.pop(job_id, None)
        except asyncio.CancelledError:
            if not self._stop.is_set():
                raise
        except DatabaseUnavailable as exc:
            # Still queued (or running, with a lease the sweeper watches): not lost.
            log.warning("job %s: not taken now (%s); the sweeper queues it again", job_id, exc)
        except Exception:
            log.exception("job %s: the worker could not run it; it will be retried", job_id)
        finally:
            self._tasks.discard(task)

    def _abandoned_pipeline(self, job_id: str, task: asyncio.Task[Any]) -> None:
        self._abandoned[task] = job_id
        task.add_done_callback(self._pipeline_ended)

    def _pipeline_ended(self, task: asyncio.Task[Any]) -> None:
        job_id = self._abandoned.pop(task, "?")
        if not task.cancelled() and task.exception() is not None:
            log.info("job %s: its abandoned pipeline ended with %r", job_id, task.exception())

    async def _end_abandoned(self) -> None:
        """Cancel the pipelines still running after their job ended or went back to the
        queue, and wait (bounded) for them: they may still write to the vector store, which
        the runtime closes next."""
        tasks = [t for t in self._abandoned if not t.done()]
        if not tasks:
            return
        for task in tasks:
            task.cancel()
        _, still = await asyncio.wait(tasks, timeout=ABANDON_SECONDS)
        for task in still:
            log.error(
                "job %s: its pipeline ignores cancellation and is still running; it may "
                "write to the vector store after this worker stopped",
                self._abandoned.get(task, "?"),
            )

    async def stop(self, grace: float | None = None) -> None:
        """Take no new jobs; let running ones finish for ``grace`` s; hand the rest back."""
        grace = self.limits.shutdown_grace_seconds if grace is None else grace
        self._stop.set()
        waiting = [t for t in self._tasks if not t.done()]
        if self._running:
            log.info("waiting up to %.0f s for %d running job(s)", grace, len(self._running))
        handed_back: list[str] = []
        if waiting:
            _, pending = await asyncio.wait(waiting, timeout=grace)
            handed_back = list(self._running)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=10)
        # Before a handed-back job can start elsewhere, and before the store closes.
        await self._end_abandoned()
        for job_id in handed_back:
            log.info("job %s handed back to the queue", job_id)
            if self.queue.distributed:
                try:
                    await self.queue.enqueue(job_id)
                except Exception as exc:  # the sweeper re-enqueues it later
                    log.warning("job %s not re-enqueued (%s)", job_id, exc)
        if self._listener is not None:
            await self._listener
            self._listener = None
        self.queue.set_handler(None)
        _LIVE.discard(self.worker_id)
        if self._own_converter:
            self._own_converter = False  # closed once, however often stop() is called
            await self._converter.aclose()
