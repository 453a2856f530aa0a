"""GraphService on real parts: LightRAG, the local ONNX embedder, a SQLite source registry.

The only stand-in is the LLM (no model can run on the test machine): ``tests.ollama_standin``
is a real HTTP server speaking Ollama's ``/api/chat``, so the LLM client, its breaker and
LightRAG's parsing of the replies all run for real.

LightRAG keeps its key-value stores (documents, status, chunks, the LLM cache) in
process-wide dicts keyed by namespace and workspace, not by working directory. The last
GraphService of a process to close clears them (orchestrator/graphrag/workspaces.py,
tested in test_workspaces.py); ``fresh_lightrag`` also clears them around each test, so a
test that failed before closing its service cannot leak its documents into the next.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from knowledge.breakers import Breaker
from knowledge.settings import KnowledgeSettings
from knowledge.wiring import build_service
from orchestrator.graphrag.config import GraphConfig, LLMConfig
from orchestrator.graphrag.indexer import SourceChunks
from orchestrator.graphrag.service import GraphService
from orchestrator.graphrag.workspaces import ChunkSpec
from orchestrator_client.graph_models import LightRAGAnswer, LightRAGKeywords, LightRAGQuery
from tests.ollama_standin import OllamaStandIn

COLLECTION = "shield"

# Two pages about the same systems: "Billing Database" is named in both.
BILLING_URL = "https://wiki.example.com/ops/billing.html"
PAYMENTS_URL = "https://wiki.example.com/ops/payments.html"
BILLING_TEXT = (
    "The Billing Database is used by the Invoice Service. The Invoice Service runs on Kubernetes."
)
PAYMENTS_TEXT = "The Payments Gateway depends on the Billing Database."


def doc(url: str, *texts: str, title: str | None = None) -> SourceChunks:
    return SourceChunks(url, title or url.rsplit("/", 1)[-1], [ChunkSpec(t) for t in texts])


@dataclass(frozen=True)
class GraphStorage:
    """Where one test's LightRAG lives: what a restarted process opens again."""

    data_dir: Path

    def config(self, llm_url: str | None) -> GraphConfig:
        llm = LLMConfig("ollama", "stand-in", llm_url, timeout=30.0) if llm_url else None
        return GraphConfig(
            working_dir=self.data_dir / "lightrag",
            llm=llm,
            registry_url=f"sqlite+aiosqlite:///{self.data_dir}/jobs.sqlite3",
        )

    @asynccontextmanager
    async def open(
        self, llm_url: str | None, *, breaker: Breaker | None = None
    ) -> AsyncIterator[GraphService]:
        """A GraphService as the orchestrator builds one, closed (with its store) after."""
        knowledge = build_service(KnowledgeSettings(data_dir=self.data_dir))
        try:
            graph = GraphService(
                self.config(llm_url), knowledge, llm_breaker=breaker or Breaker("llm")
            )
            try:
                await graph.open()
                yield graph
            finally:
                await graph.close()
        finally:
            await knowledge.close()


def forget_lightrag_memory() -> None:
    """What a process exit does to LightRAG's shared storage (nothing if never imported)."""
    shared = sys.modules.get("lightrag.kg.shared_storage")
    if shared is not None:
        shared.finalize_share_data()


@pytest.fixture
def fresh_lightrag() -> Iterator[None]:
    forget_lightrag_memory()
    yield
    forget_lightrag_memory()


@pytest.fixture
def storage(tmp_path: Path, fresh_lightrag: None) -> GraphStorage:
    return GraphStorage(tmp_path / "data")


@pytest.fixture
async def graph_service(
    storage: GraphStorage, standin: OllamaStandIn
) -> AsyncIterator[GraphService]:
    async with storage.open(standin.url) as graph:
        yield graph


class PickyStandIn(OllamaStandIn):
    """The stand-in, answering HTTP 500 to any request whose text contains ``poison``:
    an LLM that fails on one document of a batch and not on the others."""

    def __init__(self, poison: str) -> None:
        super().__init__()
        self.poison = poison

    def _handle(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        if self.poison in str(body):
            with self._lock:
                self.calls += 1
            return 500, {"error": "model runner crashed on this text (stand-in, on purpose)"}
        return super()._handle(method, path, body)


@contextmanager
def picky_standin(poison: str) -> Iterator[PickyStandIn]:
    llm = PickyStandIn(poison)
    with llm.service:
        yield llm


async def ask(
    graph: GraphService,
    query: str,
    mode: str,
    *,
    low: Sequence[str] = (),
    high: Sequence[str] = (),
    only_context: bool = True,
) -> LightRAGAnswer:
    keywords = LightRAGKeywords(low_level=list(low), high_level=list(high)) if low or high else None
    return await graph.query(
        LightRAGQuery.model_validate(
            {"query": query, "mode": mode, "only_context": only_context, "keywords": keywords}
        )
    )


def entity_sources(answer: LightRAGAnswer) -> dict[str, list[str]]:
    return {entity.name: entity.sources for entity in answer.entities}


def chunk_texts(answer: LightRAGAnswer) -> list[str]:
    return [chunk.text for chunk in answer.chunks]
