"""Arguments for each MCP tool: valid ones from its input schema, then one of them broken.

A schema says "string" where the tool wants a collection name, a URL or a file in its
ingest roots: ``OVERRIDES`` gives those arguments valid values, and ``_fix`` the rules a
schema cannot say ("exactly one of text or documents"). ``broken_arguments`` then breaks
one argument and says which, so the test can ask that the error names it.
"""

from __future__ import annotations

import base64
import copy
import string
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastmcp import Client
from hypothesis import strategies as st

from tests.mcp_server.hostile_values import (
    INT64_MAX,
    INT64_MIN,
    UNICODE_EDGES,
    UNKNOWN_KEYS,
    Strategy,
    deep_values,
    from_schema,
    hostile,
    hostile_for,
    hostile_scalars,
    unicode_text,
)

SENTINEL = "The lighthouse keeper winds the brass clock every evening at dusk."
SENTINEL_COLLECTION = "sentinel"
# Under .invalid (RFC 6761): never resolves anywhere, so a crawl of them fetches nothing.
BASE_HOSTS = ["docs.example.invalid", "wiki.site.invalid"]
COLLECTIONS = ["fuzz", SENTINEL_COLLECTION, "fuzz-b"]
# Set by the pipeline on every chunk; a request's metadata may not use them.
PIPELINE_KEYS = {"source", "title", "headings", "page", "chunk_index", "chunk_count"}
PIPELINE_KEYS |= {"content_hash", "job_id", "ingested_at"}


@dataclass
class World:
    """The server the examples run against, and what the fixture put in it."""

    client: Client[Any]
    docs: Path
    job_ids: list[str]
    cancel: Callable[[str], Awaitable[None]]
    schemas: dict[str, dict[str, Any]] = field(default_factory=dict)

    async def schema(self, tool: str) -> dict[str, Any]:
        if not self.schemas:
            self.schemas = {t.name: t.input_schema for t in await self.client.list_tools()}
        return self.schemas[tool]


# -- valid values the schema cannot describe --------------------------------------------------

WORDS = st.from_regex(r"[A-Za-z]{3,10}( [A-Za-z]{1,10}){0,5}", fullmatch=True)
KEY = st.text(string.ascii_letters + "_", min_size=1, max_size=10)
SCALAR = st.one_of(
    st.booleans(),
    st.integers(INT64_MIN, INT64_MAX),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)


def passages() -> Strategy:
    """Text worth storing: any Unicode (no lone surrogates), not blank."""
    return st.text(min_size=1, max_size=300).filter(lambda t: t.strip())


def metadata(reserved: set[str] | frozenset[str] = frozenset()) -> Strategy:
    values = st.recursive(
        SCALAR,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEY, inner, max_size=3),
        max_leaves=8,
    )
    keys = KEY.filter(lambda k: k not in reserved)
    return st.dictionaries(keys, values, max_size=5)


def filters() -> Strategy:
    name = st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,15}", fullmatch=True)
    bounded = st.integers(-(10**12), 10**12)
    condition = st.one_of(
        st.text(max_size=20),
        st.booleans(),
        st.integers(INT64_MIN, INT64_MAX),
        st.lists(st.text(max_size=10), min_size=1, max_size=5),
        st.lists(st.integers(INT64_MIN, INT64_MAX), min_size=1, max_size=5),
        st.tuples(bounded, st.integers(0, 10**6)).map(lambda t: {"gte": t[0], "lte": t[0] + t[1]}),
        bounded.map(lambda low: {"gt": low}),
    )
    return st.dictionaries(name, condition, max_size=3)


def urls() -> Strategy:
    path = st.from_regex(r"(/[a-z0-9]{1,8}){0,3}/?", fullmatch=True)
    return st.builds(
        lambda scheme, host, p: f"{scheme}://{host}{p}",
        st.sampled_from(["http", "https"]),
        st.sampled_from(BASE_HOSTS),
        path,
    )


def _uploads() -> Strategy:
    return st.fixed_dictionaries(
        {
            "content_base64": passages().map(lambda t: base64.b64encode(t.encode()).decode()),
            "filename": st.from_regex(r"[a-z][a-z0-9_-]{0,12}\.(md|txt|html|csv)", fullmatch=True),
        }
    )


def _overrides(tool: str, world: World) -> dict[str, Strategy]:
    collection = st.sampled_from(COLLECTIONS)
    by_tool: dict[str, dict[str, Strategy]] = {
        "qdrant_store": {
            "text": passages(),
            "metadata": metadata(),
            "documents": st.lists(
                st.fixed_dictionaries({"text": passages()}, optional={"metadata": metadata()}),
                min_size=1,
                max_size=4,
            ),
        },
        "qdrant_find": {"query": passages().map(lambda t: t[:200]), "filter": filters()},
        "crawl_web": {
            "url": urls(),
            "max_pages": st.integers(1, 500),
            "mode": st.sampled_from([None, "http"]),  # browser mode needs Chromium
        },
        "ingest_doc": {"metadata": metadata(PIPELINE_KEYS)},  # the source: see _fix
        "get_job_status": {
            "job_id": st.sampled_from(world.job_ids),
            "wait_seconds": st.integers(0, 30),
        },
        "lightrag_query": {
            "query": WORDS,
            "high_level_keywords": st.lists(WORDS, max_size=4),
            "low_level_keywords": st.lists(WORDS, max_size=4),
        },
    }
    return {"collection": collection, **by_tool[tool]}


@st.composite
def _fix(draw: st.DrawFn, tool: str, args: dict[str, Any], world: World) -> dict[str, Any]:
    """The rules between arguments that a JSON schema does not carry."""
    if tool == "qdrant_store":
        if args.get("documents"):
            args.pop("text", None)
            args.pop("metadata", None)
        else:
            args.pop("documents", None)
            args["text"] = args.get("text") or draw(passages())
    elif tool == "ingest_doc":
        for key in ("source", "content_base64", "filename"):
            args.pop(key, None)
        if draw(st.booleans()):
            args.update(draw(_uploads()))
        else:
            args["source"] = draw(st.sampled_from(["notes.md", str(world.docs / "notes.md")]))
        args.pop("doc_type", None)  # checked against the content when the job runs
    elif tool == "crawl_web":
        if args.get("allowed_domains") is not None:
            args["allowed_domains"] = [url_host(args["url"])]
    elif tool == "lightrag_query":
        keywords = args.get("low_level_keywords") or args.get("high_level_keywords")
        if args.get("mode") not in (None, "naive") and not keywords:
            # A graph mode with no LLM on the server needs keywords to work from.
            args["low_level_keywords"] = [draw(WORDS)]
    return args


def url_host(url: str) -> str:
    return url.split("://", 1)[1].split("/", 1)[0]


def valid_arguments(tool: str, schema: Mapping[str, Any], world: World) -> Strategy:
    return from_schema(schema, _overrides(tool, world)).flatmap(lambda a: _fix(tool, a, world))


# -- breaking one argument --------------------------------------------------------------------

NESTED = {"metadata", "filter", "documents", "allowed_domains"}
NESTED |= {"high_level_keywords", "low_level_keywords"}
# Keys a client can send (no lone surrogates: the SDK cannot serialize those as keys).
NASTY_KEYS = st.sampled_from([k for k in UNKNOWN_KEYS if k] + ["a.b", "$where", "source"])


@st.composite
def _broken_inside(draw: st.DrawFn, value: Any) -> Any:
    """``value`` (an object or a list) with a hostile value somewhere inside."""
    value = copy.deepcopy(value)
    edges = st.one_of(st.sampled_from(UNICODE_EDGES), unicode_text())
    bad = draw(st.one_of(edges, hostile(huge=False), deep_values()))
    if isinstance(value, dict):
        value[draw(st.one_of(NASTY_KEYS, KEY, st.sampled_from(sorted(value) or ["a"])))] = bad
    elif isinstance(value, list) and value:
        index = draw(st.integers(0, len(value) - 1))
        item = value[index]
        if isinstance(item, dict) and draw(st.booleans()):
            item[draw(st.sampled_from(["text", "metadata", "meta", "source"]))] = bad
        else:
            value[index] = bad
    else:
        value = [bad]
    return value


@st.composite
def broken_arguments(
    draw: st.DrawFn, schema: Mapping[str, Any], valid: dict[str, Any]
) -> tuple[dict[str, Any], str | None]:
    """``valid`` with one argument broken, and its name (None: left valid, 1 in 10)."""
    args = copy.deepcopy(valid)
    properties: Mapping[str, Any] = schema.get("properties", {})
    required = list(schema.get("required", ()))
    how = draw(
        st.sampled_from(["none", "replace", "replace", "inside", "inside", "unknown", "drop"])
    )
    if how == "none":
        return args, None
    if how == "unknown":
        key = draw(
            st.one_of(st.sampled_from(UNKNOWN_KEYS), KEY).filter(lambda k: k not in properties)
        )
        args[key] = draw(hostile_scalars())
        return args, key
    if how == "drop" and required:
        name = draw(st.sampled_from(required))
        del args[name]
        return args, name
    name = draw(st.sampled_from(sorted(properties)))
    if how == "inside" and name in NESTED:
        inside = args.get(name)
        if not isinstance(inside, dict | list):  # not in the valid arguments: start one
            inside = {} if name in ("metadata", "filter") else []
        args[name] = draw(_broken_inside(inside))
    else:
        args[name] = draw(hostile_for(name))
    return args, name


# -- the sweep: every catalogued value in every argument ---------------------------------------

# One valid call per tool that the sweep breaks one argument of at a time.
FIXED: dict[str, dict[str, Any]] = {
    "qdrant_store": {"text": "Ferries to the islands leave at noon.", "collection": "fuzz"},
    "qdrant_find": {"query": "island ferries", "collection": "fuzz"},
    "crawl_web": {"url": f"http://{BASE_HOSTS[0]}/"},
    "ingest_doc": {
        "content_base64": base64.b64encode(b"# Ferries\n\nThey leave at noon.\n").decode(),
        "filename": "ferries.md",
    },
    "get_job_status": {},  # the fixture's job id, see fixed_call
    "lightrag_query": {"query": "when do the ferries leave", "collection": "fuzz"},
}
# How each nested argument holds a value: (the slot's name in reports, the argument's value).
NESTINGS: dict[str, list[tuple[str, Callable[[Any], Any]]]] = {
    "metadata": [("metadata.k", lambda v: {"k": v})],
    "filter": [("filter.k", lambda v: {"k": v}), ("filter.k[]", lambda v: {"k": [v]})],
    "documents": [
        ("documents[0].text", lambda v: [{"text": v}]),
        ("documents[0].metadata.k", lambda v: [{"text": "Ok.", "metadata": {"k": v}}]),
    ],
    "allowed_domains": [("allowed_domains[]", lambda v: [v])],
    "high_level_keywords": [("high_level_keywords[]", lambda v: [v])],
    "low_level_keywords": [("low_level_keywords[]", lambda v: [v])],
}


def fixed_call(tool: str, argument: str, value: Any, world: World) -> dict[str, Any]:
    """The tool's fixed valid call with ``argument`` set to ``value``, and whatever the
    argument excludes taken out (a document's source is its path *or* its content)."""
    args = dict(FIXED[tool])
    if tool == "get_job_status":
        args["job_id"] = world.job_ids[0]
    if tool == "ingest_doc" and argument == "source":
        args = {}
    if tool == "qdrant_store" and argument == "documents":
        args.pop("text")
    args[argument] = value
    return args
