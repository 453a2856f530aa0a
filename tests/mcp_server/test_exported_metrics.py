"""What a real `shield-mcp serve --transport http` exports on /metrics after a session
of hostile requests: every label value of every series comes from a bounded set (tool
names, MCP methods, reasons, kinds, stages, route templates, status codes ...), none of
what the client sent leaks into a label, and Prometheus's `promtool check metrics`
accepts the exposition. The embedded default: MCP server, orchestrator and workers in one
process, so its /metrics holds every family."""

from __future__ import annotations

import base64
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import quote

import httpx
import mcp_types as mt
import pytest
from fastmcp import Client
from mcp.shared.exceptions import MCPError
from prometheus_client.parser import text_string_to_metric_families

from knowledge import metrics as knowledge_metrics
from mcp_server.app import ALL_TOOLS
from mcp_server.metrics import ERROR_REASONS, KNOWN_ERROR_CODES, KNOWN_METHODS
from orchestrator.composition import compose_orchestrator
from orchestrator.http.metrics import KNOWN_METHODS as HTTP_METHODS
from orchestrator.jobs import metrics as job_metrics
from orchestrator.settings import OrchestratorSettings
from orchestrator_client.graph_models import QueryMode
from orchestrator_client.models import JobKind
from shield_common.build_info import installed_version
from shield_common.probes import DEPENDENCIES
from tests.deploy.tools import require_tool
from tests.mcp_server.hostile_values import PATH_TRICKS, UNICODE_EDGES, UNKNOWN_KEYS, URL_TRICKS
from tests.support import ServerProcess, running_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]  # a server process, a real job


def sendable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: no HTTP client can send it
        return False
    return True


# Part of every value this session invents, so a leak is found wherever it lands.
MARK = "zq7hostile"
ALL_HOSTILE = [
    f"{MARK}-tool",
    f"../../{MARK}",
    f"{MARK}\x00x",
    f"{MARK} {UNICODE_EDGES[5]}",
    f"http://127.0.0.1/{MARK}",
    f"/etc/{MARK}",
    *UNKNOWN_KEYS[:8],
    *UNICODE_EDGES[:8],
    *PATH_TRICKS[:8],
]
HOSTILE = [value for value in ALL_HOSTILE if sendable(value)]
REFUSED_URLS = [
    f"http://127.0.0.1/{MARK}",
    f"http://[::1]/{MARK}",
    f"file:///etc/{MARK}",
    f"gopher://127.0.0.1:6379/_{MARK}",
    f"http://169.254.169.254/{MARK}",
    *[u for u in URL_TRICKS if "127.0.0.1" in u][:6],
]


class UnknownMethod(mt.Request[mt.RequestParams | None, Literal["zq7hostile/method"]]):
    method: Literal["zq7hostile/method"] = "zq7hostile/method"
    params: mt.RequestParams | None = None


async def hostile_session(url: str) -> None:
    """Every tool with invented names, collections, URLs, paths and job ids; an unknown
    MCP method; one real job."""
    async with Client(f"{url}/mcp", timeout=120) as client:

        async def call(tool: str, args: dict[str, Any]) -> bool:
            return bool((await client.call_tool(tool, args, raise_on_error=False)).is_error)

        # Some of the values are valid names (a collection "meta" may well be created):
        # what matters is that none becomes a label value.
        for value in HOSTILE:
            assert await call(value, {})  # an unknown tool
            await call("qdrant_find", {"query": "x", "collection": value})
            await call("qdrant_store", {"text": "x", "collection": value})
            await call("get_job_status", {"job_id": value})
            await call("ingest_doc", {"source": value})
            await call("lightrag_query", {"query": "x", "collection": value})
        for value in REFUSED_URLS:
            assert await call("crawl_web", {"url": value})
            assert await call("ingest_doc", {"source": value})
        assert await call("get_job_status", {"job_id": str(uuid.uuid4())})
        with pytest.raises(MCPError):
            await client.session.send_request(UnknownMethod(), mt.EmptyResult)

        upload = base64.b64encode(f"A real job among the {MARK} calls.".encode()).decode()
        accepted = await client.call_tool(
            "ingest_doc",
            {"content_base64": upload, "filename": "real.txt", "metadata": {MARK: MARK}},
        )
        assert accepted.structured_content is not None
        job_id = accepted.structured_content["job_id"]
        status = await client.call_tool("get_job_status", {"job_id": job_id, "wait_seconds": 30})
        while status.structured_content["status"] in ("queued", "running"):
            status = await client.call_tool(
                "get_job_status", {"job_id": job_id, "wait_seconds": 30}
            )
        assert status.structured_content["status"] == "succeeded", status

    # The job API on the same port, with invented ids, paths and methods.
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        for value in HOSTILE:
            quoted = quote(value, safe="")
            await http.get(f"/jobs/{quoted}")
            await http.delete(f"/jobs/{quoted}")
            await http.get(f"/jobs/{quoted}/events")
            await http.request("BREW", f"/jobs/{quoted}")
            await http.post("/ingest-async", json={"kind": value, "url": value})
        await http.get("/jobs", params={"status": MARK, "limit": MARK})


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The server's /metrics after the hostile session."""
    import asyncio

    tmp = tmp_path_factory.mktemp("exported")
    data_dir = tmp / "data"
    data_dir.mkdir()
    server: ServerProcess
    with running_server(data_dir, tmp / "server.log") as server:
        asyncio.run(hostile_session(server.url))
        text = httpx.get(f"{server.url}/metrics", timeout=30).text
    yield text


def route_templates(tmp: Path) -> set[str]:
    app = compose_orchestrator(OrchestratorSettings(data_dir=tmp)).app
    return {path for route in app.routes if isinstance(path := getattr(route, "path", None), str)}


def allowed(tmp: Path) -> dict[str, set[str]]:
    tools = {*ALL_TOOLS, "unknown"}
    lightrag_ops = {"insert", "delete", "rebuild", *(f"query_{m}" for m in get_args(QueryMode))}
    return {
        "tool": tools,
        "reason": {*ERROR_REASONS, *job_metrics.FAILURE_REASONS},
        "mcp_method_name": {*KNOWN_METHODS, "other"},
        "gen_ai_tool_name": {*tools, ""},
        "error_type": {"", "tool_error", "_OTHER", *map(str, KNOWN_ERROR_CODES)},
        "endpoint": {*route_templates(tmp), "other"},
        "method": {*HTTP_METHODS, "OTHER"},
        "kind": {k.value for k in JobKind},
        "stage": set(job_metrics.STAGES),
        "provider": set(knowledge_metrics.PROVIDERS),
        "purpose": set(knowledge_metrics.PURPOSES),
        "store": set(knowledge_metrics.STORES),
        "operation": {*knowledge_metrics.OPERATIONS, *lightrag_ops},
        "result": {"hit", "miss"},
        "breaker": {"orchestrator", "ollama", "openai_embeddings", "qdrant", "llm"},
        "dependency": set(DEPENDENCIES),
        "version": {installed_version()},
        # tool calls, jobs, LightRAG operations; HTTP status codes are checked by pattern
        "status": {"success", "error", "succeeded", "failed", "cancelled", "ok"},
    }


# The client library's own collectors: labels describe the interpreter, not requests.
LIBRARY_FAMILIES = ("python_info", "python_gc_")
HTTP_STATUS = re.compile(r"[1-5][0-9][0-9]")


def test_every_label_value_is_from_a_bounded_set(exported: str, tmp_path: Path) -> None:
    assert MARK not in exported
    sets = allowed(tmp_path)
    seen: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(exported):
        if family.name.startswith(LIBRARY_FAMILIES):
            continue
        for sample in family.samples:
            for name, value in sample.labels.items():
                if name in ("le", "quantile"):
                    continue
                assert name in sets, f"{sample.name}: unexpected label {name}={value!r}"
                if name == "status" and sample.name.startswith("api_requests"):
                    assert HTTP_STATUS.fullmatch(value), f"{sample.name}: status {value!r}"
                else:
                    assert value in sets[name], f"{sample.name}: {name}={value!r}"
                seen.setdefault(name, set()).add(value)
    # The hostile session reached the labelled paths it was meant to.
    assert {"unknown", "qdrant_find", "crawl_web"} <= seen["tool"]
    assert {"invalid_argument"} <= seen["reason"]
    assert "other" in seen["mcp_method_name"] and "-32601" in seen["error_type"]
    assert "other" in seen["endpoint"] and "/jobs/{job_id}" in seen["endpoint"]
    assert "OTHER" in seen["method"]


def test_the_exposition_passes_promtool(exported: str) -> None:
    promtool = require_tool("promtool")
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=exported, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_embedded_process_exports_every_family(exported: str) -> None:
    names = {family.name for family in text_string_to_metric_families(exported)}
    expected = {
        "tool_calls",
        "tool_errors",
        "tool_duration_seconds",
        "mcp_server_operation_duration_seconds",
        "embedding_duration_seconds",
        "embedding_batch_size",
        "embedding_query_cache",
        "vector_store_operation_duration_seconds",
        "vector_store_operation_errors",
        "circuit_breaker_state",
        "shield_build_info",
        "api_requests",
        "api_duration_seconds",
        "jobs",
        "job_failures",
        "job_duration_seconds",
        "job_stage_duration_seconds",
        "worker_queue_size",
        "active_jobs",
        "oldest_queued_job_age_seconds",
        "lightrag_operations",
        "lightrag_operation_duration_seconds",
    }
    assert expected <= names, expected - names
