"""The client against a real orchestrator (the API tests' runtime, app and uvicorn helper)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from knowledge.breakers import Breaker
from orchestrator_client.client import OrchestratorClient
from tests.orchestrator.http.conftest import Api, guarded_url, idle, settings

__all__ = ["RECOVERY", "Api", "breaker", "guarded_url", "idle", "idle_client", "settings"]


RECOVERY = 60.0  # never elapses on its own during a test; tests move breaker_clock past it


@pytest.fixture
def breaker() -> Breaker:
    # The production name, so the circuit_breaker_state{breaker="orchestrator"} series is
    # the one under test.
    return Breaker("orchestrator", failure_threshold=5, recovery_seconds=RECOVERY)


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
