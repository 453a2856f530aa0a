"""LightRAG on this machine's PostgreSQL: documents, status and graph in plain tables.

The connection and the workspace are ours: a `config.ini` in the working directory (which
LightRAG's PostgreSQL client reads) can neither point it elsewhere nor rename the
workspace, and the rows land under the collection's name.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from knowledge.service import KnowledgeService
from knowledge.settings import KnowledgeSettings
from knowledge.wiring import build_service
from orchestrator.graphrag.config import GraphConfig, PostgresConfig
from orchestrator.graphrag.indexer import SourceChunks
from orchestrator.graphrag.service import GraphService
from orchestrator.graphrag.workspaces import ChunkSpec
from orchestrator_client.graph_models import LightRAGQuery

# LightRAG creates its tables in a new database (`make test-fast` leaves it out).
pytestmark = [pytest.mark.postgres, pytest.mark.slow]

PSQL = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-qtA"]


def psql(sql: str, database: str = "postgres") -> str:
    done = subprocess.run([*PSQL, "-d", database, "-c", sql], check=True, capture_output=True)
    return done.stdout.decode().strip()


@pytest.fixture
def database() -> Iterator[str]:
    name = f"shield_lightrag_{uuid.uuid4().hex[:10]}"
    psql(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def knowledge(tmp_path: Path) -> AsyncIterator[KnowledgeService]:
    service = build_service(KnowledgeSettings(data_dir=tmp_path / "data"))
    yield service
    await service.close()


async def test_documents_status_and_graph_live_in_postgres_under_the_collection(
    database: str,
    knowledge: KnowledgeService,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hostile = tmp_path / "cwd"
    hostile.mkdir()
    (hostile / "config.ini").write_text(
        "[postgres]\nhost = 203.0.113.1\nworkspace = evil\ndatabase = nowhere\n"
    )
    monkeypatch.chdir(hostile)
    config = GraphConfig(
        working_dir=tmp_path / "lightrag",
        postgres=PostgresConfig("127.0.0.1", 5432, "postgres", None, database),
        registry_url=f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}",
    )
    graph = GraphService(config, knowledge)
    await graph.open()
    try:
        report = await graph.index(
            "ops-notes",
            [
                SourceChunks(
                    "https://wiki.example/runbook",
                    "Runbook",
                    [ChunkSpec("Restart the ledger service after each deploy.", ("Deploys",))],
                    [None],
                )
            ],
        )
        assert report.status == "indexed", report
        answer = await graph.query(
            LightRAGQuery(query="what to do after a deploy", collection="ops-notes")
        )
        assert answer.chunks[0].source == "https://wiki.example/runbook"
        assert answer.chunks[0].title == "Runbook"
    finally:
        await graph.close()
    tables = psql(
        "SELECT table_name FROM information_schema.tables WHERE table_schema='public'", database
    ).split()
    assert "lightrag_doc_status" in tables and "shield_lightrag_sources" in tables
    workspaces = psql("SELECT DISTINCT workspace FROM lightrag_doc_status", database)
    assert workspaces == "ops-notes"
    assert psql("SELECT status FROM lightrag_doc_status", database) == "processed"
