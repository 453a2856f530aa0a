"""Circuit breakers, exercised through real embedders talking HTTP to a service that is down.

Ollama and OpenAI-compatible endpoints cannot run here, so a real HTTP server on 127.0.0.1
(``StubService``) stands in for them; the embedder, its HTTP client, the ``circuitbreaker``
state machine and the Prometheus collector are the real code. Breakers get a unique name per
test, because the ``circuit_breaker_state`` gauge is read from the process-wide registry.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client import REGISTRY

from knowledge.breakers import Breaker, breakers
from knowledge.embeddings.ollama import OllamaEmbedder
from knowledge.embeddings.openai_compat import OpenAIEmbedder
from knowledge.embeddings.remote import RemoteEmbedder
from knowledge.errors import DependencyRejected, DependencyUnavailable
from tests.support import BreakerClock, Handler, StubService

CLOSED, OPEN, HALF_OPEN = 0.0, 1.0, 2.0
RECOVERY = 60.0  # never elapses on its own in a test: the tests move ``breaker_clock``


def healthy(method: str, path: str, body: Any) -> tuple[int, Any]:
    vectors = [[1.0, float(len(t)), 0.0] for t in body["input"]]
    if path == "/api/embed":
        return 200, {"model": body["model"], "embeddings": vectors}
    return 200, {"data": [{"index": i, "embedding": v} for i, v in enumerate(vectors)]}


def failing(method: str, path: str, body: Any) -> tuple[int, Any]:
    return 503, {"error": "overloaded, try again later"}


def model_missing(method: str, path: str, body: Any) -> tuple[int, Any]:
    return 404, {"error": f'model "{body["model"]}" not found, try pulling it first'}


def key_refused(method: str, path: str, body: Any) -> tuple[int, Any]:
    return 401, {"error": {"message": "Incorrect API key provided"}}


def garbled(method: str, path: str, body: Any) -> tuple[int, Any]:
    return 200, {"something": "else"}


EmbedderFactory = Callable[[str, Breaker], RemoteEmbedder]


def _ollama(url: str, breaker: Breaker) -> RemoteEmbedder:
    return OllamaEmbedder(host=url, model="nomic-embed-text", breaker=breaker)


def _openai(url: str, breaker: Breaker) -> RemoteEmbedder:
    return OpenAIEmbedder(base_url=url, model="text-embedding-3-small", breaker=breaker)


EMBEDDERS = [pytest.param(_ollama, id="ollama"), pytest.param(_openai, id="openai")]


def new_breaker(**kwargs: Any) -> Breaker:
    return Breaker(f"test-breaker-{uuid.uuid4().hex[:10]}", **kwargs)


def gauge(breaker: Breaker) -> float | None:
    return REGISTRY.get_sample_value("circuit_breaker_state", {"breaker": breaker.name})


async def fail_times(embedder: RemoteEmbedder, times: int) -> None:
    for _ in range(times):
        with pytest.raises(DependencyUnavailable):
            await embedder.embed_documents(["hello"])


@pytest.mark.parametrize("make", EMBEDDERS)
async def test_breaker_opens_after_the_threshold_and_then_fails_fast(
    make: EmbedderFactory, closing: list[RemoteEmbedder]
) -> None:
    breaker = new_breaker(failure_threshold=3, recovery_seconds=60)
    with StubService(failing) as stub:
        embedder = make(stub.url, breaker)
        closing.append(embedder)
        for attempt in range(1, 4):
            assert breaker.state == "closed"
            assert gauge(breaker) == CLOSED
            with pytest.raises(DependencyUnavailable, match="503") as caught:
                await embedder.embed_documents(["hello"])
            if attempt < 3:
                assert caught.value.retry_after is None
            else:  # the failure that trips the breaker already says when to retry
                assert caught.value.retry_after is not None and 0 < caught.value.retry_after <= 60
                assert "circuit breaker is now open" in str(caught.value)
            assert len(stub.requests) == attempt
        assert breaker.state == "open"
        assert gauge(breaker) == OPEN

        for _ in range(5):
            with pytest.raises(DependencyUnavailable) as caught:
                await embedder.embed_documents(["hello", "again"])
            assert len(stub.requests) == 3  # failed fast: the service was not contacted

    retry_after = caught.value.retry_after
    assert retry_after is not None
    assert 0 < retry_after <= 60
    message = str(caught.value)
    assert breaker.name in message
    assert "circuit breaker is open after 3 consecutive failures" in message
    assert f"Retry in {retry_after:.0f} s" in message
    assert "overloaded, try again later" in message  # the last failure, for the operator


@pytest.mark.parametrize("make", EMBEDDERS)
async def test_a_service_that_refuses_connections_opens_the_breaker(
    make: EmbedderFactory, closing: list[RemoteEmbedder], dead_port: int
) -> None:
    breaker = new_breaker(failure_threshold=2, recovery_seconds=60)
    embedder = make(f"http://127.0.0.1:{dead_port}", breaker)  # nothing listens there
    closing.append(embedder)
    await fail_times(embedder, 2)
    assert breaker.state == "open"
    with pytest.raises(DependencyUnavailable, match="circuit breaker is open") as caught:
        await embedder.embed_query("hello")
    assert caught.value.retry_after is not None
    assert "not reachable" in str(caught.value)


@pytest.mark.parametrize(
    ("make", "handler", "error"),
    [
        pytest.param(_ollama, model_missing, "ollama pull", id="ollama-model-missing"),
        pytest.param(_openai, key_refused, "SHIELD_OPENAI_API_KEY", id="openai-key-refused"),
        pytest.param(_openai, model_missing, "SHIELD_EMBED_MODEL", id="openai-model-missing"),
        pytest.param(_ollama, garbled, "format", id="ollama-garbled"),
        pytest.param(_openai, garbled, "format", id="openai-garbled"),
    ],
)
async def test_rejected_requests_do_not_open_the_breaker(
    make: EmbedderFactory,
    handler: Handler,
    error: str,
    closing: list[RemoteEmbedder],
) -> None:
    breaker = new_breaker(failure_threshold=2, recovery_seconds=60)
    with StubService(handler) as stub:
        embedder = make(stub.url, breaker)
        closing.append(embedder)
        for attempt in range(1, 6):
            with pytest.raises(DependencyRejected, match=error):
                await embedder.embed_documents(["hello"])
            assert len(stub.requests) == attempt  # every request reached the service
    assert breaker.state == "closed"
    assert gauge(breaker) == CLOSED


async def test_only_consecutive_failures_count(closing: list[RemoteEmbedder]) -> None:
    breaker = new_breaker(failure_threshold=3, recovery_seconds=60)
    with StubService(failing) as stub:
        embedder = _ollama(stub.url, breaker)
        closing.append(embedder)
        await fail_times(embedder, 2)
        stub.handler = healthy
        await embedder.embed_documents(["a success resets the count"])
        stub.handler = failing
        await fail_times(embedder, 2)
        assert breaker.state == "closed"
        await fail_times(embedder, 1)
        assert breaker.state == "open"
    assert len(stub.requests) == 6


@pytest.mark.parametrize("make", EMBEDDERS)
async def test_breaker_recovers_through_half_open_and_the_gauge_follows(
    make: EmbedderFactory, closing: list[RemoteEmbedder], breaker_clock: BreakerClock
) -> None:
    breaker = new_breaker(failure_threshold=2, recovery_seconds=RECOVERY)
    bystander = new_breaker(failure_threshold=2, recovery_seconds=RECOVERY)
    with StubService(failing) as stub:
        embedder = make(stub.url, breaker)
        closing.append(embedder)
        assert gauge(breaker) == CLOSED
        await fail_times(embedder, 2)
        assert gauge(breaker) == OPEN
        assert gauge(bystander) == CLOSED  # each breaker has its own series

        with pytest.raises(DependencyUnavailable, match="circuit breaker is open"):
            await embedder.embed_documents(["hello"])
        assert len(stub.requests) == 2

        breaker_clock.advance(RECOVERY - 0.5)
        assert breaker.state == "open" and gauge(breaker) == OPEN  # not yet
        breaker_clock.advance(0.5)
        assert breaker.state == "half_open"
        assert gauge(breaker) == HALF_OPEN
        assert len(stub.requests) == 2  # turning half-open sends nothing by itself

        stub.handler = healthy  # the service is back
        vectors = await embedder.embed_documents(["abc"])
        assert vectors == [[1.0, 3.0, 0.0]]
        assert len(stub.requests) == 3  # the trial call went through
        assert breaker.state == "closed"
        assert gauge(breaker) == CLOSED


async def test_a_failure_while_half_open_opens_the_breaker_again(
    closing: list[RemoteEmbedder], breaker_clock: BreakerClock
) -> None:
    breaker = new_breaker(failure_threshold=3, recovery_seconds=RECOVERY)
    with StubService(failing) as stub:
        embedder = _openai(stub.url, breaker)
        closing.append(embedder)
        await fail_times(embedder, 3)
        breaker_clock.advance(RECOVERY)
        assert breaker.state == "half_open"

        await fail_times(embedder, 1)  # one failed trial is enough to open it again
        assert len(stub.requests) == 4
        assert breaker.state == "open"
        assert gauge(breaker) == OPEN
        with pytest.raises(DependencyUnavailable, match="circuit breaker is open") as caught:
            await embedder.embed_documents(["hello"])
        assert len(stub.requests) == 4
    assert caught.value.retry_after == RECOVERY  # a whole recovery time from the failed trial


async def test_breakers_are_listed_and_exported_by_name() -> None:
    breaker = new_breaker()
    assert breaker in list(breakers())
    assert gauge(breaker) == CLOSED
    replacement = Breaker(breaker.name)  # same name: the newer breaker is the one reported
    listed = [b for b in breakers() if b.name == breaker.name]
    assert listed == [replacement]


def hanging(release: threading.Event) -> Handler:
    """A service that accepts the request and does not answer until released."""

    def handle(method: str, path: str, body: Any) -> tuple[int, Any]:
        release.wait(10)
        return 503, {"error": "too late"}

    return handle


async def give_up_on(embedder: RemoteEmbedder) -> None:
    """The caller stops waiting (as an MCP client that cancels a slow tool call does)."""
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(embedder.embed_documents(["hello"]), timeout=0.2)


async def test_a_cancelled_call_does_not_reset_the_failure_count(
    closing: list[RemoteEmbedder],
) -> None:
    breaker = new_breaker(failure_threshold=2, recovery_seconds=60)
    release = threading.Event()
    with StubService(failing) as stub:
        embedder = _ollama(stub.url, breaker)
        closing.append(embedder)
        try:
            await fail_times(embedder, 1)
            stub.handler = hanging(release)
            await give_up_on(embedder)
            stub.handler = failing
            await fail_times(embedder, 1)
        finally:
            release.set()
        assert len(stub.requests) == 3
    assert breaker.state == "open"


async def test_a_cancelled_trial_call_does_not_close_a_half_open_breaker(
    closing: list[RemoteEmbedder], breaker_clock: BreakerClock
) -> None:
    breaker = new_breaker(failure_threshold=1, recovery_seconds=RECOVERY)
    release = threading.Event()
    with StubService(failing) as stub:
        embedder = _openai(stub.url, breaker)
        closing.append(embedder)
        await fail_times(embedder, 1)
        breaker_clock.advance(RECOVERY)
        assert breaker.state == "half_open"
        stub.handler = hanging(release)
        try:
            await give_up_on(embedder)
        finally:
            release.set()
        assert len(stub.requests) == 2
        assert breaker.state == "half_open"
        assert gauge(breaker) == HALF_OPEN
        stub.handler = healthy
        await embedder.embed_documents(["back"])
    assert breaker.state == "closed"


def rejections(breaker: Breaker) -> float | None:
    return REGISTRY.get_sample_value("circuit_breaker_rejections_total", {"breaker": breaker.name})


async def test_rejections_count_only_the_calls_an_open_breaker_refused(
    closing: list[RemoteEmbedder], breaker_clock: BreakerClock
) -> None:
    breaker = new_breaker(failure_threshold=2, recovery_seconds=RECOVERY)
    assert rejections(breaker) == 0.0  # the series exists before anything is refused
    with StubService(failing) as stub:
        embedder = _ollama(stub.url, breaker)
        closing.append(embedder)
        await fail_times(embedder, 2)  # the failures that open it reached the service
        assert breaker.state == "open"
        assert rejections(breaker) == 0.0

        for _ in range(3):
            with pytest.raises(DependencyUnavailable, match="circuit breaker is open"):
                await embedder.embed_documents(["hello"])
        assert len(stub.requests) == 2
        assert rejections(breaker) == 3.0

        breaker_clock.advance(RECOVERY)  # half-open: the trial call is let through
        stub.handler = healthy
        await embedder.embed_documents(["back"])
        assert len(stub.requests) == 3
        assert breaker.state == "closed"
        assert rejections(breaker) == 3.0
