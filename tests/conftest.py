"""Shared fixtures. Everything here runs real components; see tests/support.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from knowledge.embeddings.local import LocalEmbedder


@pytest.fixture(scope="session")
def local_embedder_session() -> LocalEmbedder:
    """One loaded copy of the real offline model for the whole run (loading costs ~0.5 s)."""
    return LocalEmbedder()


@pytest.fixture
async def local_embedder(local_embedder_session: LocalEmbedder) -> AsyncIterator[LocalEmbedder]:
    yield local_embedder_session


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def docs_dir(tmp_path: Path) -> Path:
    """A directory for documents to ingest (tests make it an ingest root)."""
    path = tmp_path / "docs"
    path.mkdir()
    return path
