"""One LightRAG instance per collection, its workspace named after it; opened lazily.

Storage follows ``GraphConfig``: files under the data dir, or PostgreSQL tables for
documents, status and graph (``PGKVStorage``, ``PGDocStatusStorage`` and the table-based
``PGTableGraphStorage``: plain PostgreSQL, no AGE or pgvector); vectors in NanoVectorDB
files or the project's own vector store (``vector_adapter``).

LightRAG re-chunks documents by fixed token counts unless given a chunking function;
ours hands back the pipeline's own chunks (docling's, with their heading paths), which
the indexer registers under the text it enqueues (``ChunkHandoff``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from knowledge.errors import InvalidInput
from knowledge.service import KnowledgeService
from knowledge.vectorstore.ids import content_hash
from orchestrator.graphrag.config import GraphConfig, PostgresConfig
from orchestrator.graphrag.embedding import VectorCache, embedding_func
from orchestrator.graphrag.llm import CONFIGURE_HINT, ChatLLM
from orchestrator.graphrag.loader import load_lightrag
from orchestrator.graphrag.locks import WriterLocks
from orchestrator.graphrag.tokenizer import offline_tokenizer

# Joins a source's chunks into the one text LightRAG enqueues; the chunker splits on it
# when the handoff has no entry (a document left pending by a crashed process).
SEPARATOR = "\n\n\u241e\n\n"
POSTGRES_STORAGES = {
    "kv_storage": "PGKVStorage",
    "doc_status_storage": "PGDocStatusStorage",
    "graph_storage": "PGTableGraphStorage",
}


@dataclass(frozen=True)
class ChunkSpec:
    text: str
    headings: tuple[str, ...] = ()


def _chunk_dict(index: int, chunk: ChunkSpec, tokenizer: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "content": chunk.text,
        "tokens": len(tokenizer.encode(chunk.text)),
        "chunk_order_index": index,
    }
    if chunk.headings:
        out["heading"] = {
            "level": len(chunk.headings),
            "heading": chunk.headings[-1],
            "parent_headings": list(chunk.headings[:-1]),
        }
    return out


class ChunkHandoff:
    """The chunks of each enqueued text, for LightRAG's chunking callback to return."""

    def __init__(self) -> None:
        self._pending: dict[str, list[ChunkSpec]] = {}

    @staticmethod
    def _key(text: str) -> str:
        from lightrag.utils import sanitize_text_for_encoding

        # LightRAG sanitises what it enqueues; the callback sees that text.
        return content_hash(sanitize_text_for_encoding(text))

    def put(self, chunks: Sequence[ChunkSpec]) -> str:
        text = SEPARATOR.join(chunk.text for chunk in chunks)
        self._pending[self._key(text)] = list(chunks)
        return text

    def discard(self, text: str) -> None:
        self._pending.pop(self._key(text), None)

    def chunking_func(
        self,
        tokenizer: Any,
        content: str,
        _split_by: str | None = None,
        _split_only: bool = False,
        _overlap: int = 0,
        _size: int = 0,
    ) -> list[dict[str, Any]]:
        chunks = self._pending.get(content_hash(content))
        if chunks is None:
            chunks = [ChunkSpec(part.strip()) for part in content.split(SEPARATOR.strip())]
            chunks = [chunk for chunk in chunks if chunk.text]
        return [_chunk_dict(i, chunk, tokenizer) for i, chunk in enumerate(chunks)]


async def _no_llm(*_: Any, **__: Any) -> str:
    # Unreachable in normal use (no-LLM inserts skip extraction, graph queries without an
    # LLM need keywords), kept so a path we missed fails with a message, not a guess.
    raise InvalidInput(f"This needs an LLM and none is configured. {CONFIGURE_HINT}")


def _use_postgres_config(config: PostgresConfig) -> None:
    """Point LightRAG's PostgreSQL client at our database, whatever env/config.ini say."""
    from lightrag.kg import STORAGE_ENV_REQUIREMENTS
    from lightrag.kg.postgres_impl import ClientManager

    # It checks that POSTGRES_USER & co. are set before it calls get_config; ours needs none
    # (and putting the password in the environment would hand it to every child process).
    for storage in POSTGRES_STORAGES.values():
        STORAGE_ENV_REQUIREMENTS[storage] = []

    original = ClientManager.__dict__["get_config"].__func__
    if getattr(original, "_shield", False):
        original = original._shield_original

    def get_config(vector_storage: str | None = None) -> dict[str, Any]:
        values: dict[str, Any] = dict(original(vector_storage))
        values.update(
            host=config.host,
            port=config.port,
            user=config.user,
            password=config.password or "",  # trust auth: no password, and None is refused
            database=config.database,
            workspace=None,  # the constructor's workspace: the collection
            ssl_mode=config.ssl_mode,
            ssl_cert=None,
            ssl_key=None,
            ssl_root_cert=None,
            ssl_crl=None,
        )
        return values

    get_config._shield = True  # type: ignore[attr-defined]
    get_config._shield_original = original  # type: ignore[attr-defined]
    ClientManager.get_config = staticmethod(get_config)


# LightRAG keeps documents, status and caches in process-wide maps keyed by workspace name
# (not by directory), which outlive its storages: the last Workspaces of a process to
# close clears them, so a later one (another data dir, a restart in tests) reads its own.
_open_workspaces = 0


class Workspaces:
    def __init__(
        self,
        config: GraphConfig,
        knowledge: KnowledgeService,
        llm: ChatLLM | None,
        cache: VectorCache,
        locks: WriterLocks | None = None,
    ) -> None:
        self.config = config
        self.locks = locks or WriterLocks()
        self.knowledge = knowledge
        self.llm = llm
        self.cache = cache
        self.handoff = ChunkHandoff()
        self._instances: dict[str, Any] = {}
        self._opening = asyncio.Lock()
        self._adapter: dict[str, Any] | None = None
        self._counted = False

    def _opened(self) -> None:
        global _open_workspaces
        if not self._counted:
            self._counted = True
            _open_workspaces += 1

    async def get(self, collection: str) -> Any:
        """The collection's LightRAG, its storages initialised."""
        rag = self._instances.get(collection)
        if rag is not None:
            return rag
        async with self._opening:
            rag = self._instances.get(collection)
            if rag is None:
                self._opened()
                rag = await self._open(collection)
                self._instances[collection] = rag
        return rag

    async def _open(self, collection: str) -> Any:
        postgres = self.config.postgres
        await asyncio.to_thread(load_lightrag, postgres=postgres is not None)
        if postgres is not None:
            _use_postgres_config(postgres)
        from lightrag import LightRAG

        dimension = await self.knowledge.embedder.dimension()
        handoff, llm = self.handoff, self.llm

        # Plain functions, not bound methods: LightRAG deep-copies its configuration, and a
        # copied method would carry a copy of its object (an HTTP client, the handoff).
        def chunking_func(*args: Any) -> list[dict[str, Any]]:
            return handoff.chunking_func(*args)

        async def llm_func(*args: Any, **kwargs: Any) -> str:
            if llm is None:
                return await _no_llm()
            return await llm.complete(*args, **kwargs)

        kwargs: dict[str, Any] = {
            "working_dir": str(self.config.working_dir),
            "workspace": collection,
            "embedding_func": embedding_func(self.knowledge.embedder, self.cache, dimension),
            "tokenizer": offline_tokenizer(),
            "chunking_func": chunking_func,
            "llm_model_func": llm_func,
            "llm_model_name": self.llm.config.model if self.llm else "none",
            "enable_llm_cache": True,
            # Deleting a document rebuilds its entities from the extraction cache.
            "enable_llm_cache_for_entity_extract": True,
        }
        if self.llm is not None:
            kwargs["llm_model_max_async"] = self.llm.config.max_concurrency
            kwargs["default_llm_timeout"] = int(self.llm.config.timeout)
        if postgres is not None:
            kwargs.update(POSTGRES_STORAGES)
        if self.config.vectors == "store":
            kwargs["vector_storage"] = "ShieldVectorStorage"
            kwargs["vector_db_storage_cls_kwargs"] = self._adapter_kwargs()
        rag = LightRAG(**kwargs)
        async with self.locks.setup():
            await rag.initialize_storages()
        return rag

    def _adapter_kwargs(self) -> dict[str, Any]:
        """The store registered once for every workspace of this process."""
        from orchestrator.graphrag.vector_adapter import register

        if self._adapter is None:
            self._adapter = register(
                self.knowledge.store, vector_name=self.knowledge.embedder.vector_name
            )
        return dict(self._adapter)

    async def close(self) -> None:
        global _open_workspaces
        instances, self._instances = list(self._instances.values()), {}
        for rag in instances:
            await rag.finalize_storages()
        if self._counted:
            self._counted = False
            _open_workspaces -= 1
            if _open_workspaces == 0:
                from lightrag.kg.shared_storage import finalize_share_data

                finalize_share_data()
        if self._adapter is not None:
            from orchestrator.graphrag.vector_adapter import unregister

            unregister(str(self._adapter["shield_store"]))
            self._adapter = None
