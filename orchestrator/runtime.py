"""The orchestrator's runtime: job store, queue, sweeper and (maybe) a worker, started and
stopped together. One per process; the HTTP app and the MCP server use ``runtime.jobs``.

It is handed its parts (orchestrator/composition.py makes them from settings) and only
decides their order: what starts first, what a failure to start says, what stops last.
Once started it probes the dependencies it uses (shield_common/probes.py): /ready answers
from those probes' states, so one failed check does not take the process out of rotation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from knowledge.errors import DependencyUnavailable, KnowledgeError
from knowledge.health import ModelList, known_message, vector_store_probe
from knowledge.redact import safe_location
from knowledge.service import KnowledgeService
from knowledge.wiring import KnowledgeHandle
from orchestrator.jobs.metrics import declare_kinds
from orchestrator.jobs.queue import JobQueue
from orchestrator.jobs.recovery import Sweeper
from orchestrator.jobs.service import JobService
from orchestrator.jobs.store import JobStore
from orchestrator.jobs.worker import Worker
from orchestrator_client.models import JobKind
from shield_common.probes import DependencyProbe, ProbePolicy, Prober

if TYPE_CHECKING:
    from orchestrator.graphrag.config import LLMConfig
    from orchestrator.graphrag.service import GraphService

# (policy, required) -> the embedder's probe; made by the composition root, from settings.
EmbedderProbe = Callable[[ProbePolicy, bool], DependencyProbe]

log = logging.getLogger(__name__)


class StartFailed(DependencyUnavailable):
    """A part of the runtime could not start; the message names it and what to check.

    A KnowledgeError, so every caller that reports those (the CLI, the embedded server's
    tool errors) shows this one line, not a traceback.
    """


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


@dataclass(frozen=True)
class Recovery:
    lease_seconds: float
    max_attempts: int


class OrchestratorRuntime:
    def __init__(
        self,
        *,
        store: JobStore,
        queue: JobQueue,
        jobs: JobService,
        recovery: Recovery,
        database: str,
        knowledge: KnowledgeHandle | None = None,
        make_worker: Callable[[KnowledgeHandle, GraphService | None], Worker] | None = None,
        make_graph: Callable[[KnowledgeService], GraphService] | None = None,
        graph_unavailable: str | None = None,
        probe_policy: ProbePolicy | None = None,
        embedder_probe: EmbedderProbe | None = None,
    ) -> None:
        self.store = store
        self.queue = queue
        self.jobs = jobs
        self.recovery = recovery
        # The job store as the operator configured it, for messages (its password hidden).
        self._database = database
        # With workers: the knowledge service they write through, opened at start.
        self._knowledge = knowledge
        self._make_worker = make_worker
        # LightRAG over the same knowledge service; why it cannot run here, when it cannot.
        self._make_graph = make_graph
        self._graph_unavailable = graph_unavailable
        self.graph: GraphService | None = None
        declare_kinds([kind.value for kind in JobKind])
        self.worker: Worker | None = None
        self._stop = asyncio.Event()
        self._sweeper: asyncio.Task[None] | None = None
        self._started = False
        self._probe_policy = probe_policy or ProbePolicy()
        self._embedder_probe = embedder_probe
        self.prober: Prober | None = None

    @property
    def run_workers(self) -> bool:
        return self._make_worker is not None

    @property
    def service(self) -> KnowledgeService | None:
        """The knowledge service the workers write through, once started."""
        return self._knowledge.service if self._knowledge is not None else None

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
        secret = _password(self._database)
        try:
            await self.store.open()
        except Exception as exc:
            raise StartFailed(
                f"cannot open the job store at {safe_location(self._database)} "
                f"({_reason(exc, secret)}). Check SHIELD_DATABASE_URL, "
                "that the database server is running, and that the database exists and lets "
                "this user in."
            ) from exc
        try:
            await self.queue.startup()
        except Exception as exc:
            target = f"at {safe_location(self.queue.url)}" if self.queue.url else "(in-process)"
            raise StartFailed(
                f"cannot start the job queue {target} ({_reason(exc, None)}). "
                "Check SHIELD_QUEUE_URL."
            ) from exc
        try:
            await self._start_worker()
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
                f"the job store at {safe_location(self._database)} failed "
                f"during start-up recovery ({_reason(exc, secret)})."
            ) from exc
        self.prober = self._make_prober()
        self.prober.start()

    async def _start_worker(self) -> None:
        if self._knowledge is not None and (self._make_worker or self._make_graph):
            self._knowledge.open()  # the embedded store admits one process: fail now, clearly
        if self._make_graph is not None and self._knowledge is not None:
            assert self._knowledge.service is not None
            graph = self._make_graph(self._knowledge.service)
            try:
                await graph.open()
            except Exception as exc:
                raise StartFailed(
                    f"cannot start LightRAG ({_reason(exc, _password(self._database))}). "
                    "Check SHIELD_DATABASE_URL and SHIELD_LIGHTRAG_STORAGE, or set "
                    "SHIELD_LIGHTRAG=false."
                ) from exc
            self.graph = graph
        if self._make_worker is not None and self._knowledge is not None:
            self.worker = self._make_worker(self._knowledge, self.graph)
            self.jobs.on_cancel_requested = self.worker.cancel_requested
            await self.worker.start()
        elif not self.queue.distributed:
            log.warning("in-process queue without workers: jobs will wait until a restart")

    async def _recover_and_sweep(self) -> None:
        sweeper = Sweeper(
            self.store,
            self.queue,
            lease_seconds=self.recovery.lease_seconds,
            max_attempts=self.recovery.max_attempts,
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
        if self.prober is not None:
            await self.prober.stop()
            self.prober = None
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
        if self.graph is not None:
            try:
                await self.graph.close()
            except Exception:
                log.exception("LightRAG stop failed")
            self.graph = None
        if self._knowledge is not None:
            with contextlib.suppress(Exception):
                await self._knowledge.close()  # closes only what it opened itself
        await self.store.close()

    def graph_service(self) -> GraphService:
        """LightRAG, or DependencyUnavailable saying why this process has none."""
        if self.graph is not None:
            return self.graph
        raise DependencyUnavailable(
            self._graph_unavailable or "LightRAG is starting; retry in a few seconds.",
            retry_after=None if self._graph_unavailable else 5.0,
        )

    async def readiness(self) -> dict[str, str]:
        """Required dependency -> "ok" or what is wrong and what to do: the probes' states
        once started; before that (its owner could not start it), checks made now."""
        if self.prober is not None and self.prober.running:
            return await self.prober.readiness()
        prober = self._make_prober()
        try:
            return await prober.readiness()
        finally:
            await prober.stop()  # never started: closes what its checks opened

    def _make_prober(self) -> Prober:
        """A probe per dependency this process uses. The vector store and embedder are
        required where workers write through them; where only LightRAG queries read them,
        and for the LLM (LightRAG reports its failures in job results and answers), they
        are exported and logged but do not fail /ready."""
        policy = self._probe_policy
        probes = [
            DependencyProbe(
                "job_store",
                self.store.ping,
                hint="SHIELD_DATABASE_URL and that the database is running",
                policy=policy,
                describe=known_message,
            ),
            DependencyProbe(
                "queue",
                self.queue.ping,
                hint="SHIELD_QUEUE_URL and that Redis is running",
                policy=policy,
                describe=known_message,
            ),
        ]
        service = self.service
        if service is not None:
            probes.append(
                vector_store_probe(
                    lambda: service,
                    policy,
                    hint="SHIELD_QDRANT_URL",
                    required=self.run_workers,
                )
            )
            if self._embedder_probe is not None:
                probes.append(self._embedder_probe(policy, self.run_workers))
        if self.graph is not None and self.graph.config.llm is not None:
            probes.append(_llm_probe(self.graph.config.llm, policy))
        return Prober(probes, policy)


def _llm_probe(llm: LLMConfig, policy: ProbePolicy) -> DependencyProbe:
    hint = (
        "SHIELD_OLLAMA_HOST and that Ollama runs"
        if llm.kind == "ollama"
        else "SHIELD_OPENAI_BASE_URL and SHIELD_OPENAI_API_KEY"
    )
    models = ModelList(
        llm.kind, llm.url, what="the LLM", hint=hint, api_key=llm.api_key, timeout=policy.timeout
    )
    return DependencyProbe(
        "llm",
        models,
        hint=hint,
        policy=policy,
        describe=known_message,
        required=False,
        close=models.aclose,
    )
