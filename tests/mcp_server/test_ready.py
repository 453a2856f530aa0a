"""`shield-mcp serve --transport http` with a remote orchestrator has a /ready of its own.

Real processes: `shield-mcp orchestrator` and the server pointed at it (SHIELD_ORCHESTRATOR_URL),
both with tokens, the server probing every 0.2 s. Ready = the orchestrator, the vector store
and the embedder are up; the orchestrator stopped turns ``dependency_up{dependency=
"orchestrator"}`` to 0 and /ready to 503 naming it, while the server keeps answering.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support import (
    HttpProcess,
    ServerProcess,
    dependency_up,
    not_ready,
    server_env,
    until_dependency,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

MCP_TOKEN = "mcp-ready-token"
ORCHESTRATOR_TOKEN = "orchestrator-ready-token"


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
            up = ("vector_store", "embedder")
            ready = not_ready(http, "orchestrator", "SHIELD_ORCHESTRATOR_URL", up)
            assert ready.json()["error"]["code"] == "not_ready"
            assert ready.headers["retry-after"] == "1"
            assert http.get("/health").status_code == 200  # liveness is not readiness
    finally:
        if server is not None:
            server.stop()
        orchestrator.stop()
    log = (tmp_path / "server.log").read_text(errors="replace")
    assert log.count("dependency orchestrator is down") == 1, log[-3000:]
    assert ORCHESTRATOR_TOKEN not in log and MCP_TOKEN not in log
