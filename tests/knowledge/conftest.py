"""Fixtures shared by the knowledge tests (the vector ones live in vector_fixtures.py)."""

from collections.abc import AsyncIterator

import pytest

from knowledge.embeddings.remote import RemoteEmbedder
from tests.knowledge.vector_fixtures import crowded, filled, store, store_root

__all__ = ["closing", "crowded", "filled", "store", "store_root"]


@pytest.fixture
async def closing() -> AsyncIterator[list[RemoteEmbedder]]:
    """Embedders appended here are closed after the test."""
    made: list[RemoteEmbedder] = []
    yield made
    for embedder in made:
        await embedder.aclose()
