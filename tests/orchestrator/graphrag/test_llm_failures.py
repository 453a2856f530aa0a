"""An LLM that errors or cannot be reached: reported and loud, never silent, never fatal.

Real LightRAG, embedder, registry, breaker and HTTP; the LLM is the Ollama stand-in (no
model can run here), told to answer HTTP 500, or a port that refuses connections.
LightRAG itself swallows these failures (it marks a document failed, a query finds
nothing), so these tests hold the service to saying what happened.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastmcp import Client
from prometheus_client import REGISTRY

from knowledge.breakers import Breaker
from knowledge.errors import DependencyUnavailable
from orchestrator.graphrag.service import GraphService
from tests.documents import PHRASES, write_docx, write_md
from tests.mcp_server.jobs_support import call, error_of, wait_for_job
from tests.mcp_server.servers import shield_server
from tests.ollama_standin import OllamaStandIn
from tests.orchestrator.graphrag.conftest import (
    BILLING_TEXT,
    BILLING_URL,
    COLLECTION,
    PAYMENTS_TEXT,
    PAYMENTS_URL,
    GraphStorage,
    ask,
    doc,
    entity_sources,
    picky_standin,
)
from tests.support import closed_port

# LightRAG runs with a stand-in LLM: seconds per test (`make test-fast` leaves these out).
pytestmark = pytest.mark.slow

BROKEN_URL = "https://wiki.example.com/ops/relay.html"
BROKEN_TEXT = "The Broken Relay forwards alerts to the Pager Service."


def _breaker_state() -> float | None:
    return REGISTRY.get_sample_value("circuit_breaker_state", {"breaker": "llm"})


async def test_an_llm_error_during_ingest_is_reported_per_source_not_raised(
    storage: GraphStorage, standin: OllamaStandIn
) -> None:
    items = [doc(BILLING_URL, BILLING_TEXT), doc(PAYMENTS_URL, PAYMENTS_TEXT)]
    async with storage.open(standin.url, breaker=Breaker("llm", failure_threshold=50)) as graph:
        standin.fail = True
        report = await graph.index(COLLECTION, items)
        assert report.status == "failed" and report.documents_indexed == 0, report
        assert {f.source for f in report.failures} == {BILLING_URL, PAYMENTS_URL}
        for failure in report.failures:
            assert "LLM" in failure.reason and "HTTP 500" in failure.reason, failure
            assert "model runner crashed" in failure.reason, failure
        assert standin.calls > 0

        # The LLM is back: the next ingest of the same sources indexes them.
        standin.fail = False
        again = await graph.index(COLLECTION, items)
        assert again.status == "indexed" and again.documents_indexed == 2, again
        answer = await ask(graph, "Billing Database", "local", low=["Billing Database"])
    assert set(entity_sources(answer)["Billing Database"]) == {BILLING_URL, PAYMENTS_URL}


async def test_an_llm_failing_on_one_source_leaves_the_others_indexed(
    storage: GraphStorage,
) -> None:
    with picky_standin(poison="Broken Relay") as llm:
        async with storage.open(llm.url, breaker=Breaker("llm", failure_threshold=50)) as graph:
            report = await graph.index(
                COLLECTION,
                [
                    doc(BILLING_URL, BILLING_TEXT),
                    doc(BROKEN_URL, BROKEN_TEXT),
                    doc(PAYMENTS_URL, PAYMENTS_TEXT),
                ],
            )
            answer = await ask(graph, "Billing Database", "local", low=["Billing Database"])
            passages = await ask(graph, BROKEN_TEXT, "naive")
    assert report.status == "partial", report
    assert report.documents_indexed == 2 and report.entities > 0
    assert [f.source for f in report.failures] == [BROKEN_URL], report.failures
    assert "HTTP 500" in report.failures[0].reason
    assert set(entity_sources(answer)["Billing Database"]) == {BILLING_URL, PAYMENTS_URL}
    # Nothing of the failed source is served as if it were indexed.
    assert "Broken Relay" not in entity_sources(answer)
    assert all(chunk.source != BROKEN_URL for chunk in passages.chunks), passages.chunks


async def test_a_graph_query_with_a_failing_llm_raises_naming_the_llm(
    graph_service: GraphService, standin: OllamaStandIn
) -> None:
    await graph_service.index(COLLECTION, [doc(BILLING_URL, BILLING_TEXT)])
    # Asked once while the LLM works: its keywords are in LightRAG's cache.
    await ask(graph_service, "Who runs Kubernetes?", "mix")
    standin.fail = True
    for mode in ("local", "global", "hybrid", "mix"):
        # A new question: finding its keywords fails (LightRAG raises).
        with pytest.raises(DependencyUnavailable) as raised:
            await ask(graph_service, f"Who uses the Invoice Service ({mode})?", mode)
        message = str(raised.value)
        assert "The LLM (ollama model 'stand-in' at http://127.0.0.1:" in message, message
        assert "HTTP 500" in message, message
    # Known keywords, but writing the answer fails (LightRAG returns no answer, no error).
    with pytest.raises(DependencyUnavailable) as raised:
        await ask(graph_service, "Who runs Kubernetes?", "mix", only_context=False)
    message = str(raised.value)
    assert "The LLM (ollama model 'stand-in'" in message and "HTTP 500" in message, message
    assert "mode 'naive'" in message, message  # what still works without it
    # Retrieval that needs no LLM still answers.
    found = await ask(graph_service, "Who runs Kubernetes?", "local", low=["Kubernetes"])
    assert entity_sources(found)["Kubernetes"] == [BILLING_URL]


async def test_an_unreachable_llm_gives_a_clear_error_on_ingest_and_query(
    storage: GraphStorage,
) -> None:
    with closed_port() as port:
        url = f"http://127.0.0.1:{port}"
        async with storage.open(url, breaker=Breaker("llm", failure_threshold=50)) as graph:
            report = await graph.index(COLLECTION, [doc(BILLING_URL, BILLING_TEXT)])
            with pytest.raises(DependencyUnavailable) as raised:
                await ask(graph, "Who uses the Billing Database?", "mix", only_context=False)
    assert report.status == "failed" and report.failures[0].source == BILLING_URL, report
    for message in (report.failures[0].reason, str(raised.value)):
        assert f"at {url}" in message and "is not reachable" in message, message
        assert "SHIELD_OLLAMA_HOST" in message, message


async def test_ingest_succeeds_with_a_failing_llm_and_the_breaker_opens(
    data_dir: Path, docs_dir: Path, standin: OllamaStandIn, fresh_lightrag: None
) -> None:
    settings = dict(
        data_dir=data_dir,
        ingest_roots=[docs_dir],
        llm="ollama",
        ollama_host=standin.url,
        llm_model="stand-in",
        breaker_failure_threshold=2,
    )
    standin.fail = True
    async with Client(shield_server(**settings)) as client:
        results = []
        for path in (write_docx(docs_dir / "kitchen.docx"), write_md(docs_dir / "trip.md")):
            job = await call(client, "ingest_doc", source=str(path))
            done = await wait_for_job(client, job["job_id"])
            assert done["status"] == "succeeded", done.get("error")
            results.append((path, done["result"]))
        for path, result in results:
            assert result["chunks_stored"] > 0, result  # Qdrant has it
            lightrag = result["lightrag"]
            assert lightrag["status"] == "failed" and lightrag["graph"] is True, lightrag
            failure = lightrag["failures"][0]
            assert failure["source"] == str(path.resolve()), lightrag
            assert "LLM" in failure["reason"], lightrag
        assert "HTTP 500" in results[0][1]["lightrag"]["failures"][0]["reason"]
        assert _breaker_state() == 1.0  # open after 2 failures
        calls = standin.calls

        found = await call(client, "qdrant_find", query=PHRASES["docx"], limit=1)
        query_error = await error_of(client, "lightrag_query", query="Who bakes?")
        naive = await call(client, "lightrag_query", query=PHRASES["md"], mode="naive")
    assert PHRASES["docx"] in str(found), found
    assert "The LLM (ollama model 'stand-in'" in query_error, query_error
    assert "circuit breaker is open" in query_error, query_error
    assert standin.calls == calls  # the open breaker kept the query off the LLM
    # Passages of the failed documents are not served: LightRAG holds none of them.
    assert naive["chunks"] == [], naive


async def test_a_query_through_the_server_with_the_llm_unreachable_names_it(
    data_dir: Path, fresh_lightrag: None
) -> None:
    with closed_port() as port:
        settings = dict(data_dir=data_dir, llm="ollama", ollama_host=f"http://127.0.0.1:{port}")
        async with Client(shield_server(**settings)) as client:
            await call(client, "qdrant_store", text="The Billing Database holds invoices.")
            message = await error_of(client, "lightrag_query", query="What holds invoices?")
    assert f"127.0.0.1:{port}" in message and "not reachable" in message, message
    assert "SHIELD_OLLAMA_HOST" in message, message
