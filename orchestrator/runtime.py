"""The orchestrator's runtime: job store, queue, sweeper and (maybe) workers, started and
stopped together. One per process; the HTTP app and the MCP server use ``runtime.jobs``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING

from knowledge.datadir import DataDirLock
from knowledge.errors import DependencyUnavailable, KnowledgeError
from knowledge.redact import safe_url
from knowledge.service import KnowledgeService
from orchestrator.jobs.execution import Runner
from orchestrator.jobs.metrics import declare_kinds
from orchestrator.jobs.queue import JobQueue
from orchestrator.jobs.recovery import Sweeper
from orchestrator.jobs.service import Changes, JobService
from orchestrator.jobs.store import JobStore
from orchestrator.jobs.worker import Worker
from orchestrator.settings import OrchestratorSettings
from orchestrator_client.models import JobKind

if TYPE_CHECKING:
    from orchestrator.pipeline.convert import Converter

log = logging.getLogger(__name__)


class StartFailed(DependencyUnavailable):
    """A part of the runtime could not start; the message names it and what to check.

    A KnowledgeError, so every caller that reports those (the CLI, the embedded server's
    tool errors) shows this one line, not a traceback.
    """


def where(url: str) -> str:
    """A URL fit for a message: no user-info, no query (SQLite paths carry neither)."""
    if url.lower().startswith("sqlite"):
        return url.split(":///", 1)[-1]
    return safe_url(url)


def _reason(exc: BaseException, secret: str | None) -> str:
    # SQLAlchemy appends the SQL and a link on further lines; the first says what happened.
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text.replace(secret, "***") if secret else text


def _password(url: str | None) -> str | None:
    if url is None:
        return None
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).password or None
    except Exception:
        return None


class OrchestratorRuntime:
    def __init__(
        self,
        settings: OrchestratorSettings,
        *,
        service: KnowledgeService | None = None,
        run_workers: bool | None = None,
        queue_name: str | None = None,
        runner: Runner | None = None,
        converter: Converter | None = None,
    ) -> None:
        self.settings = settings
        # With the in-process queue nobody else could run the jobs; with Redis,
        # `shield-mcp worker` processes do.
        self.run_workers = settings.queue_url is None if run_workers is None else run_workers
        self.store = JobStore(settings.job_database_url)
        name = queue_name or settings.queue_name
        self.queue = JobQueue(settings, queue_name=name)
        self.changes = Changes()
        self.store.on_change = self.changes.notify
        self.jobs = JobService(self.store, self.queue, settings, changes=self.changes)
        declare_kinds([kind.value for kind in JobKind])
        self.worker: Worker | None = None
        self._service = service
        self._own_service = False
        self._lock: DataDirLock | None = None
        self._runner = runner
        self._converter = converter
        self._stop = asyncio.Event()
        self._sweeper: asyncio.Task[None] | None = None
        self._started = False

    @property
    def service(self) -> KnowledgeService | None:
        return self._service

    def _knowledge_service(self) -> KnowledgeService:
        if self._service is None:
            from knowledge.wiring import build_service, check_installed

            check_installed(self.settings)
            if not self.settings.qdrant_url:
                # The embedded store admits one process per data dir: fail now, clearly.
                self._lock = DataDirLock(self.settings.data_dir)
                self._lock.acquire()
            self._service = build_service(self.settings)
            self._own_service = True
        return self._service

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        self._stop.clear()
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        settings = self.settings
        try:
            await self.store.open()
        except Exception as exc:
            raise StartFailed(
                f"cannot open the job store at {where(settings.database_url or self.store.url)} "
                f"({_reason(exc, _password(settings.database_url))}). Check SHIELD_DATABASE_URL, "
                "that the database server is running, and that the database exists and lets "
                "this user in."
            ) from exc
        try:
            await self.queue.startup()
        except Exception as exc:
            target = f"at {where(self.queue.url)}" if self.queue.url else "(in-process)"
            raise StartFailed(
                f"cannot start the job queue {target} ({_reason(exc, None)}). "
                "Check SHIELD_QUEUE_URL."
            ) from exc
        try:
            await self._start_workers()
        except KnowledgeError:
            raise  # already says what to do
        except Exception as exc:
            raise StartFailed(
                f"cannot start the workers ({_reason(exc, None)}). Check SHIELD_DATA_DIR, "
                "SHIELD_QDRANT_URL and the embedder settings."
            ) from exc
        try:
            await self._recover_and_sweep()
        except Exception as exc:
            raise StartFailed(
                f"the job store at {where(settings.database_url or self.store.url)} failed "
                f"during start-up recovery ({_reason(exc, _password(settings.database_url))})."
            ) from exc

    async def _start_workers(self) -> None:
        if self.run_workers:
            self.worker = Worker(
                self.store,
                self.queue,
                self.settings,
                self._knowledge_service(),
                runner=self._runner,
                converter=self._converter,
            )
            self.jobs.on_cancel_requested = self.worker.cancel_requested
            await self.worker.start()
        elif not self.queue.distributed:
            log.warning("in-process queue without workers: jobs will wait until a restart")

    async def _recover_and_sweep(self) -> None:
        sweeper = Sweeper(
            self.store,
            self.queue,
            self.settings,
            local_worker=self.worker.worker_id if self.worker is not None else None,
        )
        if self.worker is not None and not self.queue.distributed:
            # The previous process (and its in-memory queue) is gone.
            await sweeper.recover_at_start()
        self._sweeper = asyncio.create_task(sweeper.run(self._stop))
        await self.jobs.counts()

    async def stop(self) -> None:
        """Stop taking jobs, let running ones finish (shutdown grace), hand back the rest."""
        if not self._started:
            return
        self._started = False
        self._stop.set()
        if self.worker is not None:
            try:
                await self.worker.stop()
            except Exception:
                log.exception("worker stop failed")
            self.jobs.on_cancel_requested = None
            self.worker = None
        if self._sweeper is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        with contextlib.suppress(Exception):
            await self.queue.shutdown()
        if self._own_service and self._service is not None:
            with contextlib.suppress(Exception):
                await self._service.close()
            self._service = None
            self._own_service = False
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        await self.store.close()

    async def readiness(self) -> dict[str, str]:
        """Component -> "ok" or what is wrong and what to do."""
        out = {
            "job_store": await _probe(
                self.store.ping(), "SHIELD_DATABASE_URL and that the database is running"
            ),
            "queue": await _probe(self.queue.ping(), "SHIELD_QUEUE_URL and that Redis is running"),
        }
        if self.run_workers and self._service is not None:
            service = self._service
            out["vector_store"] = await _probe(
                service.store.collection_exists(service.default_collection), "SHIELD_QDRANT_URL"
            )
            out["embedder"] = await _probe(
                service.embedder.dimension(), "SHIELD_EMBEDDER and its host settings"
            )
        return out


async def _probe(check: Awaitable[object], settings_hint: str) -> str:
    try:
        await check
        return "ok"
    except KnowledgeError as exc:
        return str(exc)
    except Exception as exc:
        log.warning("readiness probe failed: %s", exc)
        return f"unreachable ({type(exc).__name__}); check {settings_hint}"
