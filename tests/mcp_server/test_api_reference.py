"""docs/API_REFERENCE.md's MCP examples, called through fastmcp's in-memory Client.

Every tool the server lists has a section with an example in the doc, and every example's
``tools/call`` result is the documented one: ``isError``, and ``structuredContent`` or the
error text (ids and times only by type). The servers are composed as ``shield-mcp serve``
composes them, with the settings the doc's "About the examples" table gives them.

``API_REFERENCE_DUMP=<file>`` writes what each example really returned, in the doc's terms.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client

from tests.api_reference import (
    VARYING,
    Example,
    Reference,
    Substitutions,
    differences,
    example_world,
    read,
    server_settings,
    write_dump,
)
from tests.mcp_server.servers import shield_server

DUMP = os.environ.get("API_REFERENCE_DUMP")
MAX_REPEATS = 200  # long-polls: each answers at the next change of the job
# What a result is compared on; the rest (_meta, resultType) is the transport's.
RESULT_KEYS = ("content", "structuredContent", "isError")


async def test_every_tool_has_a_section_with_an_example(data_dir: Path) -> None:
    reference = read()
    async with Client(shield_server(data_dir=data_dir)) as client:
        tools = [tool.name for tool in await client.list_tools()]
    assert len(tools) >= 6
    missing = [t for t in tools if f"`{t}`" not in reference.sections]
    untried = [
        t
        for t in tools
        if not any(
            e.protocol == "mcp" and e.section == f"`{t}`" and json.loads(e.request)["name"] == t
            for e in reference.examples
        )
    ]
    assert missing == [], "tools without a section (### `tool`) in API_REFERENCE.md"
    assert untried == [], "tool sections without an example calling that tool"


async def call(example: Example, client: Client[Any], subs: Substitutions) -> dict[str, Any]:
    params = json.loads(subs.to_real(example.request))
    result = await client.call_tool_mcp(params["name"], params.get("arguments") or {})
    wire = result.model_dump(mode="json", by_alias=True, exclude_none=True)
    return {key: wire[key] for key in RESULT_KEYS if key in wire}


async def run_example(
    example: Example, client: Client[Any], subs: Substitutions, dump: dict[str, str]
) -> list[str]:
    documented = json.loads(example.response)
    vary = VARYING | example.vary
    problems: list[str] = []
    for _ in range(MAX_REPEATS if example.repeat else 1):
        wire = await call(example, client, subs)
        problems = []
        subs.learn(documented, wire, problems, "")
        actual = json.loads(subs.to_documented(json.dumps(wire)))
        if "content" not in documented:
            actual.pop("content", None)  # the same JSON as structuredContent, as text
        dump[example.name] = json.dumps(actual, indent=2, ensure_ascii=False)
        problems += differences(documented, actual, vary)
        if not problems:
            break
    return [f"{example}: {p}" for p in problems]


@pytest.fixture
async def servers(
    tmp_path: Path, docs_dir: Path
) -> AsyncIterator[tuple[Reference, dict[str, Client[Any]], Substitutions]]:
    reference = read()
    async with AsyncExitStack() as stack:
        subs = stack.enter_context(example_world(reference, docs_dir))
        clients = {}
        for name in sorted({e.server for e in reference.examples if e.protocol == "mcp"}):
            values = {key: subs.to_real(v) for key, v in server_settings(name).items()}
            server = shield_server(data_dir=tmp_path / name, **values)
            clients[name] = await stack.enter_async_context(Client(server))
        yield reference, clients, subs


@pytest.mark.slow  # jobs run in the embedded orchestrator: a docling child, the crawler
@pytest.mark.timeout(300)
async def test_the_tool_examples_return_as_documented(
    servers: tuple[Reference, dict[str, Client[Any]], Substitutions],
) -> None:
    reference, clients, subs = servers
    examples = [e for e in reference.examples if e.protocol == "mcp"]
    assert len(examples) >= 12  # the doc was read
    problems: list[str] = []
    dump: dict[str, str] = {}
    try:
        for example in examples:
            problems += await run_example(example, clients[example.server], subs, dump)
    finally:
        if DUMP:
            write_dump(DUMP, dump)
    assert not problems, "\n".join(problems)
