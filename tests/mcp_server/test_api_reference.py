"""docs/API_REFERENCE.md's MCP examples, called through fastmcp's in-memory Client.

Every tool the server lists has a section with an example in the doc, and every example's
``tools/call`` result is the documented one: ``isError``, and ``structuredContent`` or the
error text (ids and times only by type). The servers are composed as ``shield-mcp serve``
composes them, with the settings the doc's "About the examples" table gives them.

``API_REFERENCE_DUMP=<file>`` writes what each example really returned, in the doc's terms.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client

from tests.api_reference import (
    VARYING,
    Example,
    Substitutions,
    World,
    differences,
    example_servers,
    read,
    run_examples,
)
from tests.mcp_server.servers import shield_server

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


async def attempt(
    example: Example, client: Client[Any], subs: Substitutions, dump: dict[str, str]
) -> list[str]:
    documented = json.loads(example.response)
    wire = await call(example, client, subs)
    problems: list[str] = []
    subs.learn(documented, wire, problems, "")
    actual = json.loads(subs.to_documented(json.dumps(wire)))
    if "content" not in documented:
        actual.pop("content", None)  # the same JSON as structuredContent, as text
    dump[example.name] = json.dumps(actual, indent=2, ensure_ascii=False)
    return problems + differences(documented, actual, VARYING | example.vary)


@pytest.fixture
async def servers(tmp_path: Path, docs_dir: Path) -> AsyncIterator[World[Client[Any]]]:
    async def start(stack: AsyncExitStack, name: str, settings: dict[str, Any]) -> Client[Any]:
        server = shield_server(data_dir=tmp_path / name, **settings)
        return await stack.enter_async_context(Client(server))

    async with example_servers("mcp", docs_dir, start) as world:
        yield world


@pytest.mark.slow  # jobs run in the embedded orchestrator: a docling child, the crawler
@pytest.mark.timeout(300)
async def test_the_tool_examples_return_as_documented(servers: World[Client[Any]]) -> None:
    examples, problems = await run_examples(servers, "mcp", attempt)
    assert len(examples) >= 12  # the doc was read
    assert not problems, "\n".join(problems)
