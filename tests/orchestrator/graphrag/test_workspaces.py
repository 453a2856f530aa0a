"""LightRAG's process-wide memory does not outlive the service that filled it.

Regression: LightRAG keeps documents, status and its LLM cache in process-wide maps keyed
by workspace name, which survive closing its storages. A service opened later in the same
process on another data dir saw the first one's documents as already processed (and
served their cached extraction) instead of reading its own, empty, files.
"""

from __future__ import annotations

from pathlib import Path

from knowledge.settings import KnowledgeSettings
from knowledge.wiring import build_service
from orchestrator.graphrag.config import GraphConfig
from orchestrator.graphrag.indexer import SourceChunks
from orchestrator.graphrag.service import GraphService
from orchestrator.graphrag.workspaces import ChunkSpec
from orchestrator_client.models import LightRAGReport

SOURCE = SourceChunks(
    "https://wiki.example/backups", "Backups", [ChunkSpec("Backups run at 02:00 every night.")]
)


async def _index_in(data_dir: Path) -> tuple[bool, LightRAGReport]:
    """Index SOURCE in a service on ``data_dir``; whether LightRAG knew it beforehand."""
    knowledge = build_service(KnowledgeSettings(data_dir=data_dir))
    graph = GraphService(
        GraphConfig(
            working_dir=data_dir / "lightrag",
            registry_url=f"sqlite+aiosqlite:///{data_dir}/jobs.sqlite3",
        ),
        knowledge,
    )
    await graph.open()
    try:
        rag = await graph.workspaces.get("ops")
        known = await rag.doc_status.get_by_id(SOURCE.document_id("ops")) is not None
        return known, await graph.index("ops", [SOURCE])
    finally:
        await graph.close()
        await knowledge.close()


async def test_a_second_data_dir_in_the_same_process_starts_empty(tmp_path: Path) -> None:
    known, first = await _index_in(tmp_path / "a")
    assert not known and first.documents_indexed == 1
    known, second = await _index_in(tmp_path / "b")
    # Its own files hold nothing yet: LightRAG must not know the document there.
    assert not known and second.documents_indexed == 1
    known, again = await _index_in(tmp_path / "b")
    assert known and again.documents_unchanged == 1  # read back from its own files
