"""`shield-mcp serve --transport http` with a remote orchestrator has a /ready of its own.

Real processes: `shield-mcp orchestrator` and the server pointed at it (SHIELD_ORCHESTRATOR_URL),
both with tokens, the server probing every 0.2 s. Ready = the orchestrator, the vector store
and the embedder are up; the orchestrator stopped turns ``dependency_up{dependency=
"orchestrator"}`` to 0 and /ready to 503 naming it, while the server keeps answering.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import HttpProcess, ServerProcess, server_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

HANG = 60.0  # guards against a hang only
MCP_TOKEN = "mcp-ready-token"
ORCHESTRATOR_TOKEN = "orchestrator-ready-token"


def dependency_up(metrics: str) -> dict[str, float]:
    return {
        sample.labels["dependency"]: sample.value
        for family in text_string_to_metric_families(metrics)
        if family.name == "dependency_up"
        for sample in family.samples
    }


def until_dependency(http: httpx.Client, name: str, value: float, server: HttpProcess) -> None:
    deadline = time.monotonic() + HANG
    while dependency_up(http.get("/metrics").text).get(name) != value:
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} never {value}:\n{server.log()[-3000:]}")
        time.sleep(0.1)


def test_ready_follows_the_remote_orchestrator_and_needs_the_token(tmp_path: Path) -> None:
    for name in ("orchestrator-data", "server-data"):
        (tmp_path / name).mkdir()
    orchestrator = HttpProcess(
        lambda port: ["orchestrator", "--host", "127.0.0.1", "--port", str(port)],
        server_env(
            tmp_path / "orchestrator-data",
            SHIELD_LIGHTRAG="false",
            SHIELD_ORCHESTRATOR_TOKEN=ORCHESTRATOR_TOKEN,
        ),
        tmp_path / "orchestrator.log",
    )
    server: ServerProcess | None = None
    try:
        orchestrator.wait_ready(timeout=60)
        server = ServerProcess(
            tmp_path / "server-data",
            tmp_path / "server.log",
            SHIELD_ORCHESTRATOR_URL=orchestrator.url,
            SHIELD_ORCHESTRATOR_TOKEN=ORCHESTRATOR_TOKEN,
            SHIELD_MCP_TOKEN=MCP_TOKEN,
            SHIELD_PROBE_INTERVAL_SECONDS="0.2",
            SHIELD_LOG_LEVEL="INFO",
        )
        server.wait_ready(timeout=60)
        auth = {"Authorization": f"Bearer {MCP_TOKEN}"}
        with httpx.Client(base_url=server.url, headers=auth, timeout=30) as http:
            until_dependency(http, "orchestrator", 1.0, server)
            assert dependency_up(http.get("/metrics").text) == {
                "orchestrator": 1.0,
                "vector_store": 1.0,
                "embedder": 1.0,
            }
            ready = http.get("/ready")
            assert ready.status_code == 200, ready.text
            assert ready.json() == {
                "status": "ready",
                "components": {"orchestrator": "ok", "vector_store": "ok", "embedder": "ok"},
                "error": None,
            }
            assert httpx.get(f"{server.url}/ready").status_code == 401

            orchestrator.stop()
            until_dependency(http, "orchestrator", 0.0, server)
            ready = http.get("/ready")
            assert ready.status_code == 503, ready.text
            body = ready.json()
            assert body["status"] == "not_ready"
            assert body["components"]["vector_store"] == "ok"
            assert body["components"]["embedder"] == "ok"
            assert "SHIELD_ORCHESTRATOR_URL" in body["components"]["orchestrator"]
            assert body["error"]["code"] == "not_ready"
            assert body["error"]["message"].startswith("Not ready: orchestrator: ")
            assert ready.headers["retry-after"] == "1"
            assert http.get("/health").status_code == 200  # liveness is not readiness
    finally:
        if server is not None:
            server.stop()
        orchestrator.stop()
    log = (tmp_path / "server.log").read_text(errors="replace")
    assert log.count("dependency orchestrator is down") == 1, log[-3000:]
    assert ORCHESTRATOR_TOKEN not in log and MCP_TOKEN not in log
