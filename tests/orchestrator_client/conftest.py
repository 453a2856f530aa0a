"""The client against a real orchestrator (the API tests' runtime, app and uvicorn helper)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from knowledge.breakers import Breaker
from orchestrator_client.client import OrchestratorClient
from tests.orchestrator.http.conftest import Api, guarded_url, idle, settings

__all__ = ["Api", "breaker", "guarded_url", "idle", "idle_client", "settings"]


@pytest.fixture
def breaker() -> Breaker:
    # The production name, so the circuit_breaker_state{breaker="orchestrator"} series is
    # the one under test; small recovery so half-open comes quickly.
    return Breaker("orchestrator", failure_threshold=5, recovery_seconds=0.5)


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
