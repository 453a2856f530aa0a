"""Sources that change, stay the same, go away or get their graph later.

Real LightRAG, embedder and registry; the LLM is the Ollama stand-in (real HTTP), which
turns every capitalised name into an entity and relates the names of one sentence. A
fact only the old version of a page stated must be gone from the graph once the page is
ingested again, and a query must never cite a document the registry no longer knows
(it would come back as a ``src-…`` id).
"""

from __future__ import annotations

import asyncio

import pytest

from orchestrator.graphrag.indexer import doc_statuses
from orchestrator.graphrag.registry import doc_id_of
from orchestrator.graphrag.service import GraphService
from orchestrator_client.graph_models import LightRAGAnswer
from tests.ollama_standin import OllamaStandIn
from tests.orchestrator.graphrag.conftest import (
    BILLING_TEXT,
    BILLING_URL,
    COLLECTION,
    PAYMENTS_TEXT,
    PAYMENTS_URL,
    GraphStorage,
    ask,
    chunk_texts,
    doc,
    entity_sources,
    forget_lightrag_memory,
)

# LightRAG with a stand-in LLM: seconds per test (`make test-fast` leaves these out).
pytestmark = pytest.mark.slow

QUESTION = "What feeds the Billing Database?"
OLD = "The Legacy Mainframe feeds the Billing Database."
NEW = "The Ledger Cluster feeds the Billing Database."
EVERY_NAME = [
    "Billing Database",
    "Invoice Service",
    "Kubernetes",
    "Payments Gateway",
    "Legacy Mainframe",
    "Ledger Cluster",
]


def _cites_only_real_sources(answer: LightRAGAnswer) -> None:
    cited = [s for e in answer.entities for s in e.sources]
    cited += [s for r in answer.relations for s in r.sources]
    cited += [c.source or "" for c in answer.chunks] + [r.source for r in answer.references]
    assert set(cited) <= {BILLING_URL, PAYMENTS_URL}, cited


async def _graph_of_everything(graph: GraphService) -> LightRAGAnswer:
    answer = await ask(graph, QUESTION, "local", low=EVERY_NAME)
    _cites_only_real_sources(answer)
    return answer


async def test_a_changed_source_loses_its_old_facts_and_chunks_and_gains_the_new_ones(
    graph_service: GraphService, standin: OllamaStandIn
) -> None:
    first = await graph_service.index(
        COLLECTION,
        [doc(BILLING_URL, BILLING_TEXT + " " + OLD), doc(PAYMENTS_URL, PAYMENTS_TEXT)],
    )
    assert first.status == "indexed" and first.documents_indexed == 2, first
    before = await _graph_of_everything(graph_service)
    assert entity_sources(before)["Legacy Mainframe"] == [BILLING_URL]  # it was there
    assert OLD in {r.description for r in before.relations}

    changed = await graph_service.index(COLLECTION, [doc(BILLING_URL, BILLING_TEXT + " " + NEW)])
    assert changed.status == "indexed" and changed.documents_indexed == 1, changed
    assert changed.failures == []

    after = await _graph_of_everything(graph_service)
    names = entity_sources(after)
    assert "Legacy Mainframe" not in names, after.entities
    assert OLD not in {r.description for r in after.relations}
    assert names["Ledger Cluster"] == [BILLING_URL]
    assert NEW in {r.description for r in after.relations}
    # Shared by both pages: still there, still citing both.
    assert set(names["Billing Database"]) == {BILLING_URL, PAYMENTS_URL}
    passages = await ask(graph_service, "Legacy Mainframe feeds the Billing Database", "naive")
    _cites_only_real_sources(passages)
    assert not any("Legacy Mainframe" in text for text in chunk_texts(passages))
    assert BILLING_TEXT + " " + NEW in chunk_texts(passages)


async def test_an_unchanged_source_is_not_indexed_again_and_asks_the_llm_nothing(
    graph_service: GraphService, standin: OllamaStandIn
) -> None:
    items = [doc(BILLING_URL, BILLING_TEXT), doc(PAYMENTS_URL, PAYMENTS_TEXT)]
    first = await graph_service.index(COLLECTION, items)
    assert first.documents_indexed == 2, first
    rag = await graph_service.workspaces.get(COLLECTION)
    ids = [doc_id_of(COLLECTION, BILLING_URL), doc_id_of(COLLECTION, PAYMENTS_URL)]
    stored = await doc_statuses(rag, ids)
    calls = standin.calls

    again = await graph_service.index(COLLECTION, items)
    assert again.status == "unchanged", again
    assert (again.documents_unchanged, again.documents_indexed) == (2, 0)
    assert standin.calls == calls
    # LightRAG's documents were not touched (not deleted and re-inserted from its cache).
    restored = await doc_statuses(rag, ids)
    assert [restored[i]["updated_at"] for i in ids] == [stored[i]["updated_at"] for i in ids]

    one_changed = await graph_service.index(
        COLLECTION, [doc(BILLING_URL, BILLING_TEXT + " " + NEW), doc(PAYMENTS_URL, PAYMENTS_TEXT)]
    )
    assert (one_changed.documents_indexed, one_changed.documents_unchanged) == (1, 1)
    assert standin.calls > calls


async def test_queries_during_a_reingest_neither_crash_nor_fail(
    graph_service: GraphService,
) -> None:
    await graph_service.index(
        COLLECTION,
        [doc(BILLING_URL, BILLING_TEXT + " " + OLD), doc(PAYMENTS_URL, PAYMENTS_TEXT)],
    )
    done = asyncio.Event()
    answers: list[LightRAGAnswer] = []

    async def reingest() -> None:
        try:  # a delete, then an insert, of the page that changed
            report = await graph_service.index(
                COLLECTION, [doc(BILLING_URL, BILLING_TEXT + " " + NEW)]
            )
            assert report.status == "indexed" and report.failures == [], report
        finally:
            done.set()

    async def keep_asking(mode: str, low: list[str] | None = None, answer: bool = False) -> None:
        asked = 0
        while not done.is_set() or not asked:  # each asks at least once, all along
            found = await ask(graph_service, QUESTION, mode, low=low or (), only_context=not answer)
            _cites_only_real_sources(found)
            assert found.answer or not answer, found
            answers.append(found)
            asked += 1
            await asyncio.sleep(0)

    await asyncio.gather(
        reingest(),
        keep_asking("local", low=["Billing Database"]),
        keep_asking("naive"),
        keep_asking("hybrid", answer=True),
    )
    assert len(answers) >= 3
    final = await _graph_of_everything(graph_service)
    assert "Ledger Cluster" in entity_sources(final)
    assert "Legacy Mainframe" not in entity_sources(final)


async def test_rebuild_with_an_llm_builds_the_graph_of_sources_indexed_without_one(
    storage: GraphStorage, standin: OllamaStandIn
) -> None:
    async with storage.open(None) as plain:
        report = await plain.index(
            COLLECTION, [doc(BILLING_URL, BILLING_TEXT), doc(PAYMENTS_URL, PAYMENTS_TEXT)]
        )
        assert report.status == "indexed" and report.graph is False, report
        assert report.entities == 0
        nothing = await ask(plain, "Billing Database", "local", low=["Billing Database"])
        assert nothing.entities == [] and nothing.relations == []
    assert standin.calls == 0
    forget_lightrag_memory()  # a server restarted with an LLM configured

    async with storage.open(standin.url) as graph:
        rebuilt = await graph.rebuild(COLLECTION)
        assert rebuilt.status == "indexed" and rebuilt.graph is True, rebuilt
        assert rebuilt.documents_indexed == 2 and rebuilt.failures == []
        assert rebuilt.entities > 0 and rebuilt.relations > 0
        answer = await ask(graph, "Which services depend on the Billing Database?", "local")
        unchanged = await graph.index(COLLECTION, [doc(PAYMENTS_URL, PAYMENTS_TEXT)])
    assert standin.calls > 0
    names = entity_sources(answer)
    assert set(names["Billing Database"]) == {BILLING_URL, PAYMENTS_URL}, answer.entities
    assert "Payments Gateway" in names
    _cites_only_real_sources(answer)
    assert unchanged.status == "unchanged"  # the registry now knows it has a graph


async def test_removing_a_source_leaves_no_entity_relation_or_chunk_citing_it(
    graph_service: GraphService,
) -> None:
    await graph_service.index(
        COLLECTION, [doc(BILLING_URL, BILLING_TEXT), doc(PAYMENTS_URL, PAYMENTS_TEXT)]
    )
    assert await graph_service.indexer.remove(COLLECTION, BILLING_URL) is True

    graph = await _graph_of_everything(graph_service)
    names = entity_sources(graph)
    assert "Invoice Service" not in names and "Kubernetes" not in names, graph.entities
    assert names["Billing Database"] == [PAYMENTS_URL]  # still named by the other page
    assert all(r.sources == [PAYMENTS_URL] for r in graph.relations), graph.relations
    passages = await ask(graph_service, BILLING_TEXT, "naive")
    _cites_only_real_sources(passages)
    assert chunk_texts(passages) == [PAYMENTS_TEXT]
    assert {ref.source for ref in passages.references} == {PAYMENTS_URL}
    # Gone from the registry too: a rebuild does not bring it back.
    rebuilt = await graph_service.rebuild(COLLECTION)
    assert rebuilt.documents_indexed == 1 and rebuilt.failures == [], rebuilt
    after = await ask(graph_service, BILLING_TEXT, "naive")
    assert chunk_texts(after) == [PAYMENTS_TEXT]
