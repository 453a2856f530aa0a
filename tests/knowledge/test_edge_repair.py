"""`shield-mcp repair` mends collections that older versions damaged with deep metadata.

The damage is made the way those versions made it: a payload nested 128 levels deep written
straight into the embedded store (today's service refuses it before it gets there).
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from knowledge.datadir import DataDirLock
from knowledge.embeddings.local import LocalEmbedder
from knowledge.errors import CollectionDamaged
from knowledge.service import Document, KnowledgeService
from knowledge.vectorstore.base import StoredPoint
from knowledge.vectorstore.edge import EdgeVectorStore
from tests.support import SHIELD, server_env

pytestmark = pytest.mark.slow  # `shield-mcp repair` processes

GOOD = [
    Document("Cats sleep for most of the afternoon.", {"source": "cats.md", "year": 2020}),
    Document("Dogs like long walks by the river.", {"source": "dogs.md", "year": 2021}),
]


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def service_on(data_dir: Path, embedder: LocalEmbedder) -> KnowledgeService:
    return KnowledgeService(embedder, EdgeVectorStore(data_dir), default_collection="notes")


async def damage(data_dir: Path, embedder: LocalEmbedder, *, good_write_after: bool) -> None:
    """Two good passages, then one whose metadata is nested 128 levels deep."""
    service = service_on(data_dir, embedder)
    try:
        await service.store_documents(GOOD)
        vector = (await embedder.embed_documents(["A deep one."]))[0]
        payload = {"document": "A deep one.", "metadata": {"source": "deep.md", "t": nested(128)}}
        await service.store.upsert(
            "notes",
            embedder.vector_name,
            [StoredPoint("00000000-0000-0000-0000-000000000128", vector, payload)],
        )
        if good_write_after:
            await service.store_documents([Document("Birds sing at dawn.", {"source": "b.md"})])
    finally:
        await service.close()


def repair(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SHIELD, "repair", *args],
        env=server_env(data_dir),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
async def reopened(
    data_dir: Path, local_embedder: LocalEmbedder
) -> AsyncIterator[KnowledgeService]:
    service = service_on(data_dir, local_embedder)
    yield service
    await service.close()


@pytest.mark.parametrize("good_write_after", [True, False], ids=["readable", "does-not-load"])
async def test_repair_removes_what_cannot_be_read_and_keeps_the_rest(
    data_dir: Path, local_embedder: LocalEmbedder, good_write_after: bool
) -> None:
    await damage(data_dir, local_embedder, good_write_after=good_write_after)
    broken = service_on(data_dir, local_embedder)
    try:
        with pytest.raises(CollectionDamaged, match="shield-mcp repair"):
            await broken.find("sleeping cats")
    finally:
        await broken.close()

    done = repair(data_dir)
    assert done.returncode == 0, done.stderr
    assert "notes: repaired" in done.stdout
    assert "00000000-0000-0000-0000-000000000128 (source deep.md)" in done.stdout
    assert ("did not load and was rebuilt" in done.stdout) is (not good_write_after)

    for _restart in range(2):  # healthy now, and still after a restart
        service = service_on(data_dir, local_embedder)
        try:
            found = await service.find("sleeping cats")
            assert found.results[0].text == GOOD[0].text
            ranged = await service.find("pets", filter={"year": {"gte": 2021}})
            assert [r.text for r in ranged.results] == [GOOD[1].text]
            await service.store_documents([Document("Fish swim.", {"source": "f.md"})])
            assert await service.store.count("notes") == (4 if good_write_after else 3)
        finally:
            await service.close()
    # Nothing the repair kept looks like a collection to the next one.
    again = repair(data_dir)
    assert again.returncode == 0
    assert again.stdout.splitlines() == [f"notes: ok, {4 if good_write_after else 3} passages"]
    kept = list((data_dir / "repair").glob("notes-*/original"))
    assert len(kept) == (0 if good_write_after else 1)


def test_repair_refuses_to_run_beside_a_server(data_dir: Path) -> None:
    lock = DataDirLock(data_dir)
    lock.acquire()
    try:
        done = repair(data_dir)
    finally:
        lock.release()
    assert done.returncode == 2
    assert "in use by another shield-mcp process" in done.stderr


def test_repair_names_the_collections_there_are(data_dir: Path) -> None:
    done = repair(data_dir, "nosuch")
    assert done.returncode == 2
    assert "No embedded collection 'nosuch'" in done.stderr
