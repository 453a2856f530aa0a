"""The orchestrator breaker: opens after 5 failures, fails fast, half-opens, closes again."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY
from starlette.types import ASGIApp, Receive, Scope, Send

from knowledge.breakers import Breaker
from knowledge.errors import DependencyUnavailable, InvalidInput
from orchestrator.composition import compose_orchestrator
from orchestrator.settings import OrchestratorSettings
from orchestrator_client.client import OrchestratorClient
from orchestrator_client.errors import JobNotFound
from tests.orchestrator.http.conftest import Api, serving
from tests.orchestrator_client.conftest import RECOVERY
from tests.support import BreakerClock, bound_socket

SECRET = "tok-never-in-messages"


def gauge() -> float | None:
    return REGISTRY.get_sample_value("circuit_breaker_state", {"breaker": "orchestrator"})


class Counting:
    """Counts the HTTP requests that reach the real app behind it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.requests = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.requests += 1
        await self.app(scope, receive, send)


async def test_breaker_opens_fails_fast_half_opens_and_closes(
    idle: Api, breaker: Breaker, breaker_clock: BreakerClock
) -> None:
    # Bound but not listening: the orchestrator is down, and the port stays ours until the
    # orchestrator comes back on it.
    sock = bound_socket()
    url = f"http://user:pw@127.0.0.1:{sock.getsockname()[1]}"
    async with OrchestratorClient(url, token=SECRET, timeout=2.0, breaker=breaker) as client:
        for attempt in range(5):
            assert breaker.state == "closed", attempt
            with pytest.raises(DependencyUnavailable) as caught:
                await client.list_jobs()
            message = str(caught.value)
            assert "unreachable" in message
            assert SECRET not in message
            assert "pw" not in message  # the URL's user-info is redacted
        assert breaker.state == "open"
        assert gauge() == 1.0
        assert caught.value.retry_after == RECOVERY  # the fifth failure opened it

        # Now the orchestrator is back, but the open breaker does not even try it.
        counting = Counting(idle.app)
        async with serving(counting, sock):
            breaker_clock.advance(0.5)
            with pytest.raises(DependencyUnavailable) as fast:
                await client.list_jobs()
            assert counting.requests == 0
            assert fast.value.retry_after == RECOVERY  # 59.5 s, in whole seconds rounded up
            assert "circuit breaker is open" in str(fast.value)
            assert f"Retry in {RECOVERY:.0f} s" in str(fast.value)

            breaker_clock.advance(RECOVERY - 1.0)
            assert breaker.state == "open"  # half a second to go
            breaker_clock.advance(0.5)  # the recovery time is up
            assert breaker.state == "half_open"
            assert gauge() == 2.0

            page = await client.list_jobs()  # the trial call succeeds
            assert page.jobs == []
            assert counting.requests == 1
            assert breaker.state == "closed"
            assert gauge() == 0.0


async def test_a_failed_trial_call_opens_it_again(
    breaker: Breaker, breaker_clock: BreakerClock, dead_port: int
) -> None:
    async with OrchestratorClient(f"http://127.0.0.1:{dead_port}", breaker=breaker) as client:
        for _ in range(5):
            with pytest.raises(DependencyUnavailable):
                await client.get_job("00000000-0000-0000-0000-000000000001")
        breaker_clock.advance(RECOVERY)
        assert breaker.state == "half_open"
        with pytest.raises(DependencyUnavailable):
            await client.get_job("00000000-0000-0000-0000-000000000001")
        assert breaker.state == "open"
        assert gauge() == 1.0
        # Open again, for a whole recovery time.
        with pytest.raises(DependencyUnavailable, match="circuit breaker is open") as fast:
            await client.get_job("00000000-0000-0000-0000-000000000001")
        assert fast.value.retry_after == RECOVERY


async def test_5xx_answers_count_and_4xx_answers_do_not(
    idle: Api, breaker: Breaker, settings: OrchestratorSettings
) -> None:
    async with serving(idle.app) as good, OrchestratorClient(good, breaker=breaker) as client:
        for _ in range(8):  # more than the threshold
            with pytest.raises(JobNotFound):
                await client.get_job("00000000-0000-0000-0000-000000000000")
            with pytest.raises(InvalidInput):
                await client.list_jobs(limit=1000)
        assert breaker.state == "closed"

    # An orchestrator whose runtime never started answers 500 to everything.
    broken = compose_orchestrator(settings, run_workers=False).app
    async with serving(broken) as bad, OrchestratorClient(bad, breaker=breaker) as client:
        for _ in range(5):
            with pytest.raises(DependencyUnavailable, match="HTTP 500"):
                await client.list_jobs()
        assert breaker.state == "open"
