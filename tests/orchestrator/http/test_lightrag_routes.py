"""POST /lightrag/query and /lightrag/rebuild on a real orchestrator (no LLM: none can run
here; the graph modes with one are tested with a stand-in in tests/orchestrator/graphrag).

Hostile values get a 422 that says what to change, never a 5xx; the rebuild is a job.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from knowledge.embeddings.local import LocalEmbedder
from orchestrator.settings import OrchestratorSettings
from tests.orchestrator.http.conftest import Api, api_for, make_settings, markdown_doc

SURROGATE = "\\ud800"


async def ask(api: Api, body: Any) -> tuple[int, Any]:
    raw = body if isinstance(body, str) else json.dumps(body)
    response = await api.http.post(
        "/lightrag/query", content=raw, headers={"content-type": "application/json"}
    )
    return response.status_code, response.json()


async def finished(api: Api, job_id: str) -> dict[str, Any]:
    response = await api.http.get(f"/jobs/{job_id}", params={"wait": 10})
    job: dict[str, Any] = response.json()
    for _ in range(30):
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        job = (await api.http.get(f"/jobs/{job_id}", params={"wait": 10})).json()
    raise AssertionError(f"job {job_id} did not finish: {job}")


@pytest.mark.slow  # runs an ingestion job (docling child)
async def test_an_ingested_document_answers_a_naive_query(live: Api) -> None:
    text = "# Billing\n\nThe ledger service writes every invoice to the billing database."
    accepted = (await live.http.post("/ingest-async", json=markdown_doc(text))).json()
    job = await finished(live, accepted["job_id"])
    assert job["status"] == "succeeded", job
    assert job["result"]["lightrag"]["documents_indexed"] == 1
    status, answer = await ask(live, {"query": "where are invoices written?"})
    assert status == 200, answer
    assert answer["mode"] == "naive" and "answer" not in answer
    assert "billing database" in answer["chunks"][0]["text"]
    assert answer["chunks"][0]["source"] == "upload:notes.md"
    assert answer["references"] == [{"source": "upload:notes.md", "title": "Billing"}]
    assert answer["timings"]["retrieval_ms"] > 0


@pytest.mark.slow  # an orchestrator per case (`make test-fast` keeps the two below)
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, "query"),
        ({"query": ""}, "query"),
        ({"query": "   "}, "blank"),
        ({"query": "x" * 4001}, "4000"),
        ({"query": 42}, "query"),
        ({"query": "q", "mode": "deep"}, "mode"),
        ({"query": "q", "top_k": 0}, "top_k"),
        ({"query": "q", "top_k": 10**30}, "top_k"),
        ({"query": "q", "chunk_top_k": 201}, "chunk_top_k"),
        ({"query": "q", "only_context": "maybe"}, "only_context"),
        ({"query": "q", "keywords": {"low_level": ["a"] * 33}}, "low_level"),
        ({"query": "q", "keywords": {"low_level": ["x" * 201]}}, "200"),
        ({"query": "q", "keywords": {"low_level": [""]}}, "empty"),
        ({"query": "q", "keywords": {"low_level": [["nested"]]}}, "low_level"),
        ({"query": "q", "keywords": {"middle": ["a"]}}, "middle"),
        ({"query": "q", "collection": "../etc"}, "Collection name"),
        ({"query": "q", "collection": "x" * 64}, "Collection name"),
        ({"query": "q", "surprise": 1}, "surprise"),
        ({"query": "q", "mode": "local"}, "SHIELD_LLM"),
        ({"query": "ab"}, "too short"),
    ],
)
async def test_hostile_queries_are_refused_with_a_reason(
    live: Api, body: dict[str, Any], expected: str
) -> None:
    status, answer = await ask(live, body)
    assert status == 422, answer
    assert expected in answer["error"]["message"], answer


async def test_lone_surrogates_and_deep_nesting_are_refused(live: Api) -> None:
    status, answer = await ask(live, f'{{"query": "a{SURROGATE}"}}')
    assert status == 422 and "lone surrogate" in answer["error"]["message"]
    deep = '{"query": "q", "keywords": ' + "[" * 5000 + "]" * 5000 + "}"
    status, answer = await ask(live, deep)
    # Too deep for the JSON parser: the body is refused as unreadable, not a server error.
    assert status == 422 and "nested too deeply" in answer["error"]["message"], answer


async def test_graph_modes_with_caller_keywords_need_no_llm(live: Api) -> None:
    status, answer = await ask(
        live,
        {"query": "who runs the ledger?", "mode": "local", "keywords": {"low_level": ["ledger"]}},
    )
    # An empty workspace: no entities, but a well-formed answer rather than an error.
    assert status == 200, answer
    assert answer["mode"] == "local" and answer["entities"] == []


@pytest.mark.slow  # runs an ingestion job (docling child)
async def test_rebuild_is_a_job_that_reindexes_what_the_workspace_holds(live: Api) -> None:
    text = "# Ops\n\nThe pager rota is kept in the ops calendar."
    accepted = (await live.http.post("/ingest-async", json=markdown_doc(text))).json()
    assert (await finished(live, accepted["job_id"]))["status"] == "succeeded"
    response = await live.http.post("/lightrag/rebuild", json={"collection": "shield"})
    assert response.status_code == 202, response.text
    job = await finished(live, response.json()["job_id"])
    assert job["kind"] == "lightrag_rebuild" and job["status"] == "succeeded", job
    lightrag = job["result"]["lightrag"]
    assert lightrag["documents_indexed"] == 1 and lightrag["failures"] == []
    status, answer = await ask(live, {"query": "where is the pager rota?"})
    assert status == 200 and "ops calendar" in answer["chunks"][0]["text"]


@pytest.mark.slow  # runs an ingestion job (docling child)
async def test_with_lightrag_off_queries_and_rebuilds_say_so(
    data_dir: Any, docs_dir: Any, local_embedder: LocalEmbedder
) -> None:
    settings: OrchestratorSettings = make_settings(data_dir, docs_dir, lightrag=False)
    async with api_for(settings, local_embedder, workers=True) as api:
        status, answer = await ask(api, {"query": "anything"})
        assert status == 503 and "SHIELD_LIGHTRAG" in answer["error"]["message"]
        response = await api.http.post("/lightrag/rebuild", json={})
        assert response.status_code == 422 and "SHIELD_LIGHTRAG" in response.text
        accepted = (await api.http.post("/ingest-async", json=markdown_doc("# T\n\nText."))).json()
        job = await finished(api, accepted["job_id"])
        assert job["status"] == "succeeded" and job["result"]["lightrag"] is None
