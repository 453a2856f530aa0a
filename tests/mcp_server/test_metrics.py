"""The MCP server's own metrics: tool_errors_total's reasons and the OpenTelemetry
operation histogram, through fastmcp's in-memory Client on the real server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal

import httpx
import mcp_types as mt
import pytest
from fastmcp import Client
from fastmcp.exceptions import NotFoundError, ToolError, ValidationError
from mcp.shared.exceptions import MCPError
from prometheus_client import REGISTRY

from knowledge.errors import (
    CollectionDamaged,
    CollectionMismatch,
    DataDirInUse,
    DependencyRejected,
    DependencyUnavailable,
    InvalidInput,
    KnowledgeError,
)
from mcp_server.metrics import OPERATION_DURATION
from mcp_server.middleware import ServerUnavailable, error_reason, error_type
from orchestrator.database import DatabaseUnavailable
from orchestrator.pipeline.crawl.safety import NetworkRefused
from orchestrator_client.errors import JobConflict, JobNotFound
from tests.mcp_server.servers import shield_server
from tests.support import closed_port


def caused(cause: BaseException) -> ToolError:
    """A tool error worded from ``cause``, as tools.translated_errors raises it."""
    try:
        raise ToolError(str(cause)) from cause
    except ToolError as exc:
        return exc


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (ValidationError("bad arguments"), "invalid_argument"),
        (NotFoundError("Unknown tool: 'x'"), "invalid_argument"),
        (ToolError("Give exactly one of 'text' or 'documents'."), "invalid_argument"),
        (caused(InvalidInput("query is empty")), "invalid_argument"),
        (caused(NetworkRefused("loopback")), "invalid_argument"),
        (caused(JobNotFound("no such job")), "invalid_argument"),
        (caused(JobConflict("already done")), "invalid_argument"),
        (caused(CollectionMismatch("other model")), "invalid_argument"),
        (caused(DependencyUnavailable("Ollama is down")), "unavailable"),
        (caused(DependencyRejected("the orchestrator refused the token")), "unavailable"),
        (caused(DatabaseUnavailable("job store down")), "unavailable"),
        (caused(DataDirInUse("taken")), "unavailable"),
        (caused(TimeoutError()), "unavailable"),
        (caused(httpx.ReadTimeout("slow")), "unavailable"),
        (ServerUnavailable("the data dir is taken"), "unavailable"),
        (caused(CollectionDamaged("unreadable payload")), "internal"),
        (caused(KnowledgeError("something")), "internal"),
        (caused(RuntimeError("a bug")), "internal"),
        (RuntimeError("a bug that escaped"), "internal"),
    ],
)
def test_every_tool_error_has_one_reason_by_whose_fault_it_is(
    exc: BaseException, reason: str
) -> None:
    assert error_reason(exc) == reason


@pytest.mark.parametrize(
    ("method", "exc", "expected"),
    [
        ("tools/call", ToolError("x"), "tool_error"),
        ("tools/call", caused(InvalidInput("x")), "tool_error"),
        ("resources/read", NotFoundError("x"), "-32602"),
        ("other", MCPError(-32601, "Method not found"), "-32601"),
        ("tools/list", MCPError(-32602, "bad params"), "-32602"),
        ("tools/list", MCPError(-31999, "a code nobody defined"), "_OTHER"),
        ("ping", RuntimeError("x"), "_OTHER"),
    ],
)
def test_error_type_is_the_json_rpc_code_or_tool_error(
    method: str, exc: BaseException, expected: str
) -> None:
    assert error_type(method, exc) == expected


def operations(method: str, tool: str, error: str) -> float:
    labels = {"mcp_method_name": method, "gen_ai_tool_name": tool, "error_type": error}
    return REGISTRY.get_sample_value("mcp_server_operation_duration_seconds_count", labels) or 0.0


def tool_errors(tool: str, reason: str) -> float:
    labels = {"tool": tool, "reason": reason}
    return REGISTRY.get_sample_value("tool_errors_total", labels) or 0.0


def tool_calls(tool: str, status: str) -> float:
    labels = {"tool": tool, "status": status}
    return REGISTRY.get_sample_value("tool_calls_total", labels) or 0.0


class UnknownMethod(mt.Request[mt.RequestParams | None, Literal["shield/no-such-method"]]):
    method: Literal["shield/no-such-method"] = "shield/no-such-method"
    params: mt.RequestParams | None = None


@pytest.fixture
async def embedded(data_dir: Path) -> AsyncIterator[Client]:
    async with Client(shield_server(data_dir=data_dir)) as client:
        yield client


async def test_operation_histogram_labels_success_tool_error_unknown_tool_and_method(
    embedded: Client,
) -> None:
    cases = {
        "success": ("tools/call", "qdrant_store", ""),
        "tool error": ("tools/call", "qdrant_find", "tool_error"),
        "unknown tool": ("tools/call", "unknown", "tool_error"),
        "unknown method": ("other", "", "-32601"),
    }
    before = {case: operations(*labels) for case, labels in cases.items()}

    assert not (
        await embedded.call_tool("qdrant_store", {"text": "Operations are timed."})
    ).is_error
    failed = await embedded.call_tool("qdrant_find", {"query": ""}, raise_on_error=False)
    assert failed.is_error
    unknown = await embedded.call_tool("drop_all_tables", {}, raise_on_error=False)
    assert unknown.is_error
    with pytest.raises(MCPError) as refused:
        await embedded.session.send_request(UnknownMethod(), mt.EmptyResult)
    assert refused.value.code == -32601

    assert {case: operations(*labels) - before[case] for case, labels in cases.items()} == {
        case: 1.0 for case in cases
    }
    # Neither the invented tool nor the invented method became a label value.
    for metric in REGISTRY.collect():
        for sample in metric.samples:
            assert "drop_all_tables" not in sample.labels.values()
            assert "shield/no-such-method" not in sample.labels.values()


def test_operation_buckets_are_the_semantic_conventions() -> None:
    # OpenTelemetry semconv, mcp.server.operation.duration: ExplicitBucketBoundaries.
    expected = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300]
    assert OPERATION_DURATION._upper_bounds[:-1] == expected  # the last is +Inf


async def test_each_failed_call_counts_one_reason(embedded: Client) -> None:
    before = {
        "invalid": tool_errors("qdrant_find", "invalid_argument"),
        "unknown": tool_errors("unknown", "invalid_argument"),
        "find errors": tool_calls("qdrant_find", "error"),
    }
    await embedded.call_tool("qdrant_find", {"query": ""}, raise_on_error=False)
    await embedded.call_tool("qdrant_find", {"query": "x", "limit": "many"}, raise_on_error=False)
    await embedded.call_tool(
        "qdrant_find", {"query": "x", "collection": "../etc"}, raise_on_error=False
    )
    await embedded.call_tool("no_such_tool", {}, raise_on_error=False)

    assert tool_errors("qdrant_find", "invalid_argument") == before["invalid"] + 3
    assert tool_calls("qdrant_find", "error") == before["find errors"] + 3
    assert tool_errors("unknown", "invalid_argument") == before["unknown"] + 1


async def test_a_dependency_that_is_down_is_unavailable_not_the_caller_s_fault(
    data_dir: Path,
) -> None:
    with closed_port() as port:
        server = shield_server(
            data_dir=data_dir,
            qdrant_url=f"http://127.0.0.1:{port}",
            orchestrator_url=f"http://127.0.0.1:{port}",
        )
        async with Client(server) as client:
            before = {
                tool: (tool_errors(tool, "unavailable"), tool_errors(tool, "invalid_argument"))
                for tool in ("qdrant_store", "get_job_status")
            }
            stored = await client.call_tool("qdrant_store", {"text": "x"}, raise_on_error=False)
            status = await client.call_tool(
                "get_job_status",
                {"job_id": "00000000-0000-4000-8000-000000000000"},
                raise_on_error=False,
            )
    assert stored.is_error and status.is_error
    for tool, (unavailable, invalid) in before.items():
        assert tool_errors(tool, "unavailable") == unavailable + 1, tool
        assert tool_errors(tool, "invalid_argument") == invalid, tool


async def test_calls_running_at_once_are_each_counted(embedded: Client) -> None:
    before = operations("tools/call", "qdrant_find", "tool_error")
    await asyncio.gather(
        *(embedded.call_tool("qdrant_find", {"query": ""}, raise_on_error=False) for _ in range(5))
    )
    assert operations("tools/call", "qdrant_find", "tool_error") == before + 5
