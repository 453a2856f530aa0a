"""qdrant_store / qdrant_find through fastmcp's Client, on both vector backends."""

from __future__ import annotations

from typing import Any

import pytest
from fastmcp import Client
from prometheus_client import REGISTRY

from mcp_server.app import ALL_TOOLS

DOCS = [
    {
        "text": "The on-call engineer restarts the queue worker when it stalls.",
        "metadata": {"source": "runbook.md", "team": "ops", "year": 2023, "reviewed": True},
    },
    {
        "text": "Invoices are sent on the first business day of each month.",
        "metadata": {"source": "billing.md", "team": "finance", "year": 2021, "reviewed": False},
    },
    {
        "text": "Our office dog, Biscuit, likes long walks by the river.",
        "metadata": {"source": "fun.md", "team": "people", "year": 2024, "reviewed": True},
    },
    {
        "text": "Database backups are taken nightly and kept for thirty days.",
        "metadata": {"source": "runbook.md", "team": "ops", "year": 2022, "reviewed": False},
    },
]


async def store(client: Client, **args: Any) -> dict[str, Any]:
    result = await client.call_tool("qdrant_store", args)
    assert result.structured_content is not None
    return result.structured_content


async def find(client: Client, **args: Any) -> dict[str, Any]:
    result = await client.call_tool("qdrant_find", args)
    assert result.structured_content is not None
    return result.structured_content


async def error_of(client: Client, tool: str, args: dict[str, Any]) -> str:
    result = await client.call_tool(tool, args, raise_on_error=False)
    assert result.is_error, result
    text = result.content[0].text  # type: ignore[union-attr]
    assert isinstance(text, str)
    return text


async def test_tools_are_listed_with_truthful_annotations(client: Client) -> None:
    tools = {t.name: t for t in await client.list_tools()}
    assert (
        set(tools)
        == {
            "qdrant_store",
            "qdrant_find",
            "crawl_web",
            "ingest_doc",
            "get_job_status",
            "lightrag_query",
        }
        == set(ALL_TOOLS)
    )
    lightrag = tools["lightrag_query"]
    assert lightrag.annotations and lightrag.annotations.read_only_hint is True
    assert lightrag.output_schema is not None
    assert set(lightrag.input_schema["properties"]["mode"]["anyOf"][0]["enum"]) == {
        "naive",
        "local",
        "global",
        "hybrid",
        "mix",
    }
    find_tool, store_tool = tools["qdrant_find"], tools["qdrant_store"]
    assert find_tool.annotations and find_tool.annotations.read_only_hint is True
    assert store_tool.annotations and store_tool.annotations.read_only_hint is False
    assert store_tool.annotations.destructive_hint is False
    assert store_tool.annotations.idempotent_hint is True
    props = find_tool.input_schema["properties"]
    assert props["limit"]["maximum"] == 20
    assert all(props[p].get("description") for p in ("query", "limit", "filter", "offset"))
    assert find_tool.output_schema is not None


async def test_store_then_find_returns_the_closest_passage(client: Client) -> None:
    stored = await store(client, documents=DOCS)
    assert stored["stored"] == 4 and len(set(stored["ids"])) == 4
    assert stored["collection"] == "shield"
    found = await find(client, query="who fixes the stuck worker?", limit=2)
    top = found["results"][0]
    assert top["text"] == DOCS[0]["text"]
    assert top["metadata"] == DOCS[0]["metadata"]
    assert top["id"] == stored["ids"][0]
    assert found["returned"] == 2 and found["next_offset"] == 2
    assert found["results"][0]["score"] >= found["results"][1]["score"]


async def test_single_text_with_metadata(client: Client) -> None:
    stored = await store(client, text="Lunch is at noon.", metadata={"source": "day.md"})
    assert stored["stored"] == 1
    found = await find(client, query="when is lunch", filter={"source": "day.md"})
    assert [r["text"] for r in found["results"]] == ["Lunch is at noon."]


@pytest.mark.parametrize(
    ("flt", "expected_sources"),
    [
        ({"team": "ops"}, {"runbook.md"}),
        ({"team": ["finance", "people"]}, {"billing.md", "fun.md"}),
        ({"year": {"gte": 2023}}, {"runbook.md", "fun.md"}),
        ({"year": 2021}, {"billing.md"}),
        ({"reviewed": True}, {"runbook.md", "fun.md"}),
        ({"team": "ops", "year": {"lt": 2023}}, {"runbook.md"}),
        ({"team": "nobody"}, set()),
    ],
)
async def test_metadata_filters(
    client: Client, flt: dict[str, Any], expected_sources: set[str]
) -> None:
    await store(client, documents=DOCS)
    found = await find(client, query="anything at all", filter=flt, limit=10)
    assert {r["metadata"]["source"] for r in found["results"]} == expected_sources
    for r in found["results"]:
        for key, cond in flt.items():
            value = r["metadata"][key]
            if isinstance(cond, list):
                assert value in cond
            elif isinstance(cond, dict):
                assert value >= cond.get("gte", value) and value < cond.get("lt", value + 1)
            else:
                assert value == cond


async def test_paging_and_score_threshold(client: Client) -> None:
    await store(client, documents=DOCS)
    first = await find(client, query="ops runbook", limit=2)
    second = await find(client, query="ops runbook", limit=2, offset=first["next_offset"])
    ids = [r["id"] for r in first["results"] + second["results"]]
    assert len(set(ids)) == 4
    assert second["next_offset"] == 4  # a full page: there may be more
    last = await find(client, query="ops runbook", limit=2, offset=4)
    assert last["returned"] == 0 and last["next_offset"] is None
    strict = await find(client, query="the office dog", score_threshold=0.4)
    assert [r["metadata"]["source"] for r in strict["results"]] == ["fun.md"]


async def test_restoring_the_same_documents_does_not_duplicate(client: Client) -> None:
    first = await store(client, documents=DOCS)
    second = await store(client, documents=DOCS)
    assert first["ids"] == second["ids"]
    found = await find(client, query="anything", limit=20)
    assert found["returned"] == 4


async def test_collections_are_separate(client: Client) -> None:
    await store(client, text="Only in alpha.", collection="alpha")
    await store(client, text="Only in beta.", collection="beta")
    alpha = await find(client, query="only", collection="alpha")
    assert [r["text"] for r in alpha["results"]] == ["Only in alpha."]


@pytest.mark.parametrize(
    ("tool", "args", "hint"),
    [
        ("qdrant_store", {}, "exactly one of 'text'"),
        ("qdrant_store", {"text": "a", "documents": [{"text": "b"}]}, "exactly one of 'text'"),
        ("qdrant_store", {"text": "   "}, "text is empty"),
        ("qdrant_store", {"documents": []}, "documents is empty"),
        ("qdrant_store", {"documents": [{"text": "x"}] * 9}, "limit is 8"),
        ("qdrant_store", {"documents": [{"metadata": {}}]}, "documents.0.text"),
        ("qdrant_store", {"documents": [{"text": "x"}], "metadata": {"a": 1}}, "inside each"),
        ("qdrant_store", {"text": "x", "collection": "../../etc"}, "is not allowed"),
        ("qdrant_store", {"text": "x", "metadata": "source=a"}, "metadata"),
        ("qdrant_find", {"query": ""}, "query is empty"),
        ("qdrant_find", {"query": "q", "limit": 0}, "limit"),
        ("qdrant_find", {"query": "q", "limit": 21}, "limit"),
        ("qdrant_find", {"query": "q", "offset": -3}, "offset"),
        ("qdrant_find", {"query": "q", "limit": "many"}, "limit"),
        ("qdrant_find", {"query": "q", "collection": "never-made"}, "does not exist yet"),
        ("qdrant_find", {"query": "q", "collection": "a b"}, "is not allowed"),
        ("qdrant_find", {"query": "q", "filter": {"year": {"near": 1}}}, "gt, gte, lt, lte"),
        ("qdrant_find", {"query": "q", "score_threshold": 3}, "score_threshold"),
        ("qdrant_find", {"query": "q", "filter": {"year": {"gte": float("nan")}}}, "finite"),
        ("qdrant_find", {"query": "q", "filter": {"year": 10**30}}, "64 bits"),
        ("qdrant_find", {"query": "q", "offset": 10_001}, "offset"),
        ("qdrant_store", {"documents": [{"text": "x", "meta": {"source": "a"}}]}, "meta"),
        ("qdrant_find", {}, "query"),
    ],
)
async def test_bad_input_is_a_tool_error_that_says_what_to_change(
    client: Client, tool: str, args: dict[str, Any], hint: str
) -> None:
    await store(client, text="Something so the default collection exists.")
    message = await error_of(client, tool, args)
    assert hint in message
    assert "Traceback" not in message
    # The server keeps serving after the error.
    found = await find(client, query="something")
    assert found["returned"] == 1


async def test_every_call_is_counted_by_tool_and_outcome(client: Client) -> None:
    def count(tool: str, status: str) -> float:
        labels = {"tool": tool, "status": status}
        return REGISTRY.get_sample_value("tool_calls_total", labels) or 0.0

    def observed(tool: str) -> float:
        return REGISTRY.get_sample_value("tool_duration_seconds_count", {"tool": tool}) or 0.0

    ok, bad, timed = (
        count("qdrant_find", "success"),
        count("qdrant_find", "error"),
        observed("qdrant_find"),
    )
    await store(client, text="Counting calls.")
    await find(client, query="count")
    await error_of(client, "qdrant_find", {"query": ""})
    assert count("qdrant_find", "success") == ok + 1
    assert count("qdrant_find", "error") == bad + 1
    assert observed("qdrant_find") == timed + 2


async def test_an_unknown_tool_is_a_clear_error_and_adds_no_metric_series(
    client: Client,
) -> None:
    message = await error_of(client, "qdrant_delete_everything", {})
    assert "Unknown tool 'qdrant_delete_everything'" in message
    assert "qdrant_find" in message
    labels = {"tool": "qdrant_delete_everything", "status": "error"}
    assert REGISTRY.get_sample_value("tool_calls_total", labels) is None
    assert (
        REGISTRY.get_sample_value("tool_calls_total", {"tool": "unknown", "status": "error"}) or 0
    ) >= 1
