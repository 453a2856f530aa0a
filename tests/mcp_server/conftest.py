from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastmcp import Client

from tests.mcp_server.servers import shield_server


@pytest.fixture(params=["embedded", "qdrant"])
async def client(request: pytest.FixtureRequest, data_dir: Path) -> AsyncIterator[Client]:
    """fastmcp's in-memory client on the real server, once per vector backend.

    "qdrant" is the server-mode code path (AsyncQdrantClient) on qdrant-client's in-memory
    engine, since no Qdrant server can run here.
    """
    extra = {"qdrant_url": ":memory:"} if request.param == "qdrant" else {}
    settings = dict(data_dir=data_dir, max_batch=8, max_limit=20, **extra)
    async with Client(shield_server(**settings)) as c:
        yield c


@pytest.fixture
async def ingest_client(data_dir: Path, docs_dir: Path) -> AsyncIterator[Client]:
    """The embedded default: orchestrator, job store, queue and workers in this process.

    Private addresses are allowed because the test site runs on 127.0.0.1.
    """
    settings = dict(
        data_dir=data_dir, ingest_roots=[docs_dir], crawl_allow_private=True, worker_concurrency=2
    )
    async with Client(shield_server(**settings)) as client:
        yield client
