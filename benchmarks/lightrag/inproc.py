"""GraphService in the benchmark's own process (the storage and profile phases' children).

Built as the orchestrator builds it: the knowledge service of the embedded default
(local ONNX model, qdrant-edge in the data dir), LightRAG's files in ``data/lightrag``,
the source registry in a SQLite file. Each phase runs as a child process of its own:
LightRAG keeps its key-value data in process-wide dicts, and RSS is per process.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, Literal

from knowledge.service import KnowledgeService
from knowledge.settings import KnowledgeSettings
from knowledge.vectorstore.ids import content_hash
from knowledge.wiring import build_service
from orchestrator.graphrag.config import GraphConfig, LLMConfig
from orchestrator.graphrag.indexer import SourceChunks
from orchestrator.graphrag.service import GraphService
from orchestrator.graphrag.workspaces import ChunkSpec
from orchestrator_client.graph_models import LightRAGKeywords, LightRAGQuery

COLLECTION = "bench"


@contextlib.asynccontextmanager
async def open_graph(
    data: Path, vectors: Literal["nano", "store"], llm_url: str | None = None
) -> AsyncIterator[tuple[GraphService, KnowledgeService]]:
    knowledge = build_service(KnowledgeSettings(data_dir=data))
    llm = LLMConfig("ollama", "standin", llm_url, timeout=60.0) if llm_url else None
    config = GraphConfig(
        working_dir=data / "lightrag",
        vectors=vectors,
        llm=llm,
        registry_url=f"sqlite+aiosqlite:///{data}/jobs.sqlite3",
    )
    try:
        graph = GraphService(config, knowledge)
        try:
            await graph.open()
            yield graph, knowledge
        finally:
            await graph.close()
    finally:
        await knowledge.close()


def forget_lightrag_memory() -> None:
    """What a process exit does to LightRAG's process-wide storage dicts."""
    shared = sys.modules.get("lightrag.kg.shared_storage")
    if shared is not None:
        shared.finalize_share_data()


def sources(texts: Sequence[str], start: int, stop: int, per_source: int) -> list[SourceChunks]:
    """Texts ``start..stop`` as sources of ``per_source`` chunks (``start`` a multiple of it)."""
    return [
        SourceChunks(
            f"file:///bench/report-{s // per_source:05d}.md",
            f"Report {s // per_source}",
            [ChunkSpec(t) for t in texts[s : min(stop, s + per_source)]],
        )
        for s in range(start, stop, per_source)
    ]


def job_vectors(texts: Sequence[str], rows: Any, start: int, stop: int) -> dict[str, list[float]]:
    """What an ingestion job hands GraphService.index: content hash -> vector."""
    return {content_hash(texts[i]): rows[i].tolist() for i in range(start, stop)}


def request(
    question: str,
    mode: str = "naive",
    *,
    only_context: bool = True,
    low: Sequence[str] = (),
    high: Sequence[str] = (),
    chunk_top_k: int = 10,
) -> LightRAGQuery:
    keywords = LightRAGKeywords(low_level=list(low), high_level=list(high)) if low or high else None
    return LightRAGQuery.model_validate(
        {
            "query": question,
            "mode": mode,
            "only_context": only_context,
            "keywords": keywords,
            "chunk_top_k": chunk_top_k,
            "collection": COLLECTION,
        }
    )


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def rss_mib() -> float:
    return _status_kib("VmRSS") / 1024


def peak_rss_mib() -> float:
    return _status_kib("VmHWM") / 1024


def dir_bytes(root: Path, prefix: str = "") -> int:
    """Bytes allocated on disk (as ``du``: sparse and preallocated files count what they
    use) by the files under ``root`` whose top-level entry starts with ``prefix``."""
    if not root.exists():
        return 0
    total = 0
    for entry in root.iterdir():
        if not entry.name.startswith(prefix):
            continue
        if entry.is_file():
            total += entry.stat().st_blocks * 512
        for base, _dirs, files in os.walk(entry):
            total += sum((Path(base) / f).stat().st_blocks * 512 for f in files)
    return total
