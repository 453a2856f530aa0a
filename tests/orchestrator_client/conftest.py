"""The client against a real orchestrator (the API tests' runtime, app and uvicorn helper)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from knowledge.breakers import Breaker
from knowledge.embeddings.local import LocalEmbedder
from orchestrator.settings import OrchestratorSettings
from orchestrator_client.client import OrchestratorClient
from tests.orchestrator.http.conftest import Api, api_for, make_settings

__all__ = ["Api", "breaker", "docs_dir", "idle", "idle_client", "settings"]


@pytest.fixture
def docs_dir(tmp_path: Path) -> Path:
    path = tmp_path / "docs"
    path.mkdir()
    return path


@pytest.fixture
def settings(data_dir: Path, docs_dir: Path) -> OrchestratorSettings:
    return make_settings(data_dir, docs_dir)


@pytest.fixture
def breaker() -> Breaker:
    # The production name, so the circuit_breaker_state{breaker="orchestrator"} series is
    # the one under test; small recovery so half-open comes quickly.
    return Breaker("orchestrator", failure_threshold=5, recovery_seconds=0.5)


@pytest.fixture
async def idle(settings: OrchestratorSettings, local_embedder: LocalEmbedder) -> AsyncIterator[Api]:
    """A started orchestrator without workers: its jobs stay queued."""
    async with api_for(settings, local_embedder, workers=False) as api:
        yield api


@pytest.fixture
async def idle_client(idle: Api, breaker: Breaker) -> AsyncIterator[OrchestratorClient]:
    """The embedded default's wiring: the client reaches the app through an ASGI transport."""
    client = OrchestratorClient(
        "http://orchestrator.embedded",
        breaker=breaker,
        transport=httpx.ASGITransport(app=idle.app),
    )
    yield client
    await client.aclose()
