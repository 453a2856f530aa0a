"""Metadata and text the engine could not read back are refused before anything is written.

Regression: a passage stored with metadata nested 128 levels deep made every later search
of its collection fail ("recursion limit exceeded"), even after a restart; a 400-digit
integer or a lone surrogate answered "Internal error".
"""

from __future__ import annotations

from typing import Any

import pytest
from fastmcp import Client

from tests.mcp_server.test_tools import error_of, find, store


def nested(depth: int) -> dict[str, Any]:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value  # type: ignore[no-any-return]


GOOD = {"text": "Cats sleep for most of the afternoon.", "metadata": {"source": "a.md", "year": 7}}


async def searchable(client: Client) -> None:
    """The collection still answers every kind of search with the good passage."""
    plain = await find(client, query="sleeping cats", collection="deep")
    assert plain["results"][0]["text"] == GOOD["text"]
    ranged = await find(
        client, query="sleeping cats", collection="deep", filter={"year": {"gte": 1}}
    )
    assert [r["text"] for r in ranged["results"]] == [GOOD["text"]]


async def test_deep_metadata_is_refused_and_the_collection_stays_searchable(
    client: Client,
) -> None:
    bad = {"text": "Deep.", "metadata": {"source": "d.md", "tree": nested(128)}}
    message = await error_of(
        client, "qdrant_store", {"documents": [GOOD, bad], "collection": "deep"}
    )
    assert "documents[1].metadata" in message and "16 levels" in message
    # Nothing of the refused batch was written, not even the good passage.
    missing = await error_of(client, "qdrant_find", {"query": "cats", "collection": "deep"})
    assert "does not exist" in missing
    await store(client, documents=[GOOD], collection="deep")
    # At the limit it is stored and read back.
    await store(
        client,
        text="Shallow enough.",
        metadata={"source": "e.md", "t": nested(15)},
        collection="deep",
    )
    await searchable(client)


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({"source": "h.md", "n": 10**400}, "integers must fit in 64 bits"),
        ({"source": "h.md", "n": [1, -(2**63) - 1]}, "integers must fit in 64 bits"),
        ({"source": "h\ud800.md"}, "not valid Unicode"),
        ({"source": "h.md", **{f"k{i}": i for i in range(300)}}, "more than 256 keys"),
        ({"source": "h.md", "blob": "x" * 20_000}, "the limit is 16384"),
    ],
    ids=["huge-int", "huge-int-in-list", "surrogate-value", "many-keys", "big"],
)
async def test_metadata_the_engine_cannot_keep_is_refused_by_name(
    client: Client, metadata: dict[str, Any], expected: str
) -> None:
    await store(client, documents=[GOOD], collection="deep")
    message = await error_of(
        client, "qdrant_store", {"text": "Refused.", "metadata": metadata, "collection": "deep"}
    )
    assert expected in message and "Internal error" not in message
    await searchable(client)


async def test_text_and_queries_must_be_valid_unicode(client: Client) -> None:
    await store(client, documents=[GOOD], collection="deep")
    stored = await error_of(client, "qdrant_store", {"text": "bad \ud800", "collection": "deep"})
    assert "text is not valid Unicode" in stored
    asked = await error_of(client, "qdrant_find", {"query": "cats \udc00", "collection": "deep"})
    assert "query is not valid Unicode" in asked
    await searchable(client)


async def test_ingest_doc_refuses_the_same_metadata_before_queueing(ingest_client: Client) -> None:
    content = "IyBOb3RlcwoKVGV4dC4="  # "# Notes\n\nText."
    for metadata, expected in (
        ({"tree": nested(128)}, "16 levels"),
        ({"n": 10**400}, "64 bits"),
    ):
        message = await error_of(
            ingest_client,
            "ingest_doc",
            {"content_base64": content, "filename": "n.md", "metadata": metadata},
        )
        assert expected in message and "Internal error" not in message
