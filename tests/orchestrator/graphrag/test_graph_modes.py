"""The graph modes answer from the ingested text, naming each fact's real source.

Real LightRAG, embedder and registry; the LLM is the Ollama stand-in (real HTTP), which
makes every capitalised name an entity and relates names of one sentence, the sentence
being the relation's description. So every entity and relation a query returns can be
traced back to a document, and must cite that document's URL or path.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastmcp import Client

from orchestrator.graphrag.service import GraphService
from orchestrator_client.graph_models import LightRAGAnswer
from tests.mcp_server.jobs_support import call, wait_for_job
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
    forget_lightrag_memory,
)

# LightRAG runs with a stand-in LLM: seconds per test (`make test-fast` leaves these out).
pytestmark = pytest.mark.slow

QUESTION = "Which services depend on the Billing Database?"
SENTENCES = {
    "The Billing Database is used by the Invoice Service.": BILLING_URL,
    "The Invoice Service runs on Kubernetes.": BILLING_URL,
    "The Payments Gateway depends on the Billing Database.": PAYMENTS_URL,
}
NAMES = {
    "Billing Database": {BILLING_URL, PAYMENTS_URL},
    "Invoice Service": {BILLING_URL},
    "Kubernetes": {BILLING_URL},
    "Payments Gateway": {PAYMENTS_URL},
}


async def _index_both(graph: GraphService) -> None:
    report = await graph.index(
        COLLECTION, [doc(BILLING_URL, BILLING_TEXT), doc(PAYMENTS_URL, PAYMENTS_TEXT)]
    )
    assert report.status == "indexed" and report.graph, report
    assert report.documents_indexed == 2 and report.entities > 0 and report.relations > 0


def _assert_from_the_documents(answer: LightRAGAnswer) -> None:
    """Every entity and relation is one of the documents', citing that document's URL."""
    assert answer.entities and answer.relations, answer
    for entity in answer.entities:
        assert entity.name in NAMES, entity
        assert set(entity.sources) == NAMES[entity.name], entity
    for relation in answer.relations:
        assert {relation.source, relation.target} <= set(NAMES), relation
        assert relation.description in SENTENCES, relation
        assert relation.sources == [SENTENCES[relation.description]], relation
    cited = {ref.source for ref in answer.references}
    assert cited <= {BILLING_URL, PAYMENTS_URL}, answer.references
    assert not any(s.startswith("src-") for s in cited)
    assert answer.timings.total_ms > 0


@pytest.mark.parametrize("mode", ["local", "global", "hybrid", "mix"])
async def test_graph_modes_return_the_documents_entities_and_relations_with_their_urls(
    graph_service: GraphService, mode: str
) -> None:
    await _index_both(graph_service)
    answer = await ask(graph_service, QUESTION, mode)
    assert answer.mode == mode and answer.answer is None  # only_context: no answer
    _assert_from_the_documents(answer)
    names = entity_sources(answer)
    if mode in ("local", "hybrid", "mix"):  # the question names the Billing Database
        assert set(names["Billing Database"]) == {BILLING_URL, PAYMENTS_URL}
    described = {r.description for r in answer.relations}
    assert "The Payments Gateway depends on the Billing Database." in described
    assert answer.timings.retrieval_ms is not None and answer.timings.answer_ms is None


async def test_mix_mode_writes_an_answer_from_the_retrieved_context(
    graph_service: GraphService, standin: OllamaStandIn
) -> None:
    await _index_both(graph_service)
    before = standin.calls
    answer = await ask(graph_service, QUESTION, "mix", only_context=False)
    assert answer.answer is not None and answer.answer.startswith("Stand-in answer"), answer
    # The stand-in quotes the end of the context it was given: the documents' text.
    assert "Billing Database" in answer.answer
    assert standin.calls > before
    _assert_from_the_documents(answer)
    assert answer.timings.answer_ms is not None and answer.timings.retrieval_ms is None


async def test_naive_mode_returns_passages_only(graph_service: GraphService) -> None:
    await _index_both(graph_service)
    answer = await ask(graph_service, QUESTION, "naive")
    assert answer.entities == [] and answer.relations == []
    by_source = {chunk.source: chunk.text for chunk in answer.chunks}
    assert by_source == {BILLING_URL: BILLING_TEXT, PAYMENTS_URL: PAYMENTS_TEXT}
    assert {chunk.title for chunk in answer.chunks} == {"billing.html", "payments.html"}


async def test_caller_keywords_walk_the_graph_with_no_llm_at_query_time(
    storage: GraphStorage, standin: OllamaStandIn
) -> None:
    async with storage.open(standin.url) as graph:
        await _index_both(graph)
    indexed_with = standin.calls
    assert indexed_with > 0
    forget_lightrag_memory()  # the data opened again by a process with no LLM configured
    async with storage.open(None) as graph:
        assert graph.llm is None
        answer = await ask(graph, QUESTION, "local", low=["Billing Database"], only_context=False)
        hybrid = await ask(
            graph, QUESTION, "hybrid", low=["Payments Gateway"], high=["service dependencies"]
        )
    assert answer.answer is None  # nothing to write one with
    _assert_from_the_documents(answer)
    assert set(entity_sources(answer)["Billing Database"]) == {BILLING_URL, PAYMENTS_URL}
    _assert_from_the_documents(hybrid)
    assert "Payments Gateway" in entity_sources(hybrid)
    assert standin.calls == indexed_with  # no request reached any LLM


async def test_mix_query_through_the_mcp_server_answers_from_an_ingested_document(
    data_dir: Path, docs_dir: Path, standin: OllamaStandIn, fresh_lightrag: None
) -> None:
    path = docs_dir / "platform.md"
    path.write_text(
        "# Platform Notes\n\n## Storage\n\n"
        "The Billing Database is used by the Invoice Service. "
        "The Payments Gateway depends on the Billing Database.\n",
        encoding="utf-8",
    )
    settings = dict(
        data_dir=data_dir,
        ingest_roots=[docs_dir],
        llm="ollama",
        ollama_host=standin.url,
        llm_model="stand-in",
    )
    async with Client(shield_server(**settings)) as client:
        job = await call(client, "ingest_doc", source=str(path))
        done = await wait_for_job(client, job["job_id"])
        assert done["status"] == "succeeded", done.get("error")
        lightrag = done["result"]["lightrag"]
        assert lightrag["status"] == "indexed" and lightrag["graph"] is True, lightrag
        assert lightrag["entities"] > 0 and lightrag["relations"] > 0, lightrag
        answer = await call(client, "lightrag_query", query=QUESTION, mode="mix")
    assert answer["mode"] == "mix"
    assert answer["answer"].startswith("Stand-in answer"), answer
    names = {entity["name"]: entity["sources"] for entity in answer["entities"]}
    real_path = str(path.resolve())
    assert names["Billing Database"] == [real_path], answer["entities"]
    assert {"Invoice Service", "Payments Gateway"} <= set(names)
    described = {relation["description"] for relation in answer["relations"]}
    assert "The Payments Gateway depends on the Billing Database." in described
    assert [ref["source"] for ref in answer["references"]] == [real_path]
    assert any("Payments Gateway" in chunk["text"] for chunk in answer["chunks"])
