from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastmcp import Client

from mcp_server.app import build_server
from mcp_server.settings import ServerSettings


@pytest.fixture(params=["embedded", "qdrant"])
async def client(request: pytest.FixtureRequest, data_dir: Path) -> AsyncIterator[Client]:
    """fastmcp's in-memory client on the real server, once per vector backend.

    "qdrant" is the server-mode code path (AsyncQdrantClient) on qdrant-client's in-memory
    engine, since no Qdrant server can run here.
    """
    extra = {"qdrant_url": ":memory:"} if request.param == "qdrant" else {}
    settings = ServerSettings(data_dir=data_dir, max_batch=8, max_limit=20, **extra)
    async with Client(build_server(settings)) as c:
        yield c
