"""An embedder or LLM that answers after 30 s, or drops the connection half-way through its
answer: each call fails within the configured timeout with a tool error, the breaker opens
after the configured failures (then fails fast), and nothing is half-written.

Ollama cannot run here; ``tests.ollama_standin.Misbehaving`` stands in for it at the HTTP
boundary, so the clients, their timeouts and the breakers are the real code. The outer
``asyncio.wait_for`` bounds are hang detectors, far above the 2 s timeouts under test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client

from tests.mcp_server.servers import shield_server
from tests.mcp_server.test_remote_embedders import bag_of_words
from tests.ollama_standin import Misbehaving
from tests.support import BreakerClock

# Each case waits out a dependency's time-out on purpose: out of the quick loop.
pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]

TIMEOUT = 2.0  # the configured timeout of each call
HANG = 25.0  # under the stand-in's 30 s: a call that waited for the answer fails the test
THRESHOLD = 2


@pytest.fixture
def standin() -> Iterator[Misbehaving]:
    with Misbehaving(bag_of_words) as service:
        yield service


async def call(client: Client, tool: str, **arguments: Any) -> tuple[bool, str, Any]:
    result = await asyncio.wait_for(client.call_tool(tool, arguments, raise_on_error=False), HANG)
    text = result.content[0].text if result.content else ""  # type: ignore[union-attr]
    return result.is_error, text, result.structured_content


@pytest.mark.parametrize("mode", ["slow", "drop"])
async def test_a_slow_or_dropping_embedder_fails_in_time_opens_the_breaker_and_writes_nothing(
    mode: str, standin: Misbehaving, data_dir: Path, breaker_clock: BreakerClock
) -> None:
    settings = dict(
        data_dir=data_dir,
        embedder="ollama",
        ollama_host=standin.url,
        embed_timeout=TIMEOUT,
        embed_batch_size=1,  # one request per passage: a batch can fail half-way
        breaker_failure_threshold=THRESHOLD,
        breaker_recovery_seconds=60,
        query_cache_size=0,
    )
    async with Client(shield_server(**settings)) as client:
        error, text, _ = await call(client, "qdrant_store", text="The kiln is fired on Mondays.")
        assert not error, text

        standin.mode = mode
        standin.ok_requests = 1  # the first passage of the batch is embedded, the second not
        batch = [{"text": f"Glaze recipe {i} uses {i} parts ash."} for i in range(3)]
        error, text, _ = await call(client, "qdrant_store", documents=batch)
        assert error, text
        assert "Ollama" in text, text
        if mode == "slow":
            assert f"{TIMEOUT:g}" in text or "did not answer" in text or "Timeout" in text, text
        error, text, _ = await call(client, "qdrant_find", query="when is the kiln fired?")
        assert error and "circuit breaker is now open" in text, text
        assert "Retry in" in text or "retry in" in text, text

        asked = standin.requests
        error, text, _ = await call(client, "qdrant_find", query="when is the kiln fired?")
        assert error and "circuit breaker is open" in text, text
        assert standin.requests == asked, "an open breaker must not call the embedder"

        standin.mode = "ok"
        breaker_clock.advance(61)  # the trial call is due
        error, text, found = await call(client, "qdrant_find", query="glaze kiln ash", limit=20)
        assert not error, text
    # Nothing of the failed batch was stored: the first passage alone is there.
    assert [r["text"] for r in found["results"]] == ["The kiln is fired on Mondays."], found


async def test_a_slow_llm_fails_a_graph_query_in_time_and_opens_its_breaker(
    standin: Misbehaving, data_dir: Path
) -> None:
    settings = dict(
        data_dir=data_dir,
        llm="ollama",
        ollama_host=standin.url,
        llm_timeout=TIMEOUT,
        breaker_failure_threshold=THRESHOLD,
        breaker_recovery_seconds=60,
    )
    async with Client(shield_server(**settings)) as client:
        error, text, _ = await call(
            client, "qdrant_store", text="The Billing Database holds invoices."
        )
        assert not error, text
        standin.mode = "slow"
        messages = []
        for _ in range(THRESHOLD + 1):
            error, text, _ = await call(
                client, "lightrag_query", query="What holds invoices?", mode="local"
            )
            assert error, text
            messages.append(text)
        asked = standin.requests
        error, text, _ = await call(
            client, "lightrag_query", query="What holds invoices?", mode="local"
        )
        assert error, text
    assert "did not answer within 2 s" in messages[0] and "SHIELD_LLM_TIMEOUT" in messages[0], (
        messages
    )
    assert "circuit breaker is open" in text, text
    assert standin.requests == asked, "an open breaker must not call the LLM"
