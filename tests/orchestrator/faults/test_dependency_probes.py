"""A private Redis killed under a running `shield-mcp orchestrator`: its queue probe turns
``dependency_up{dependency="queue"}`` to 0 and /ready to 503 naming the queue, and both
come back once Redis is started again.

The probes run every 0.2 s here (SHIELD_PROBE_INTERVAL_SECONDS); the test polls /metrics
until the state changes (the hang guard is the only time limit) and then checks what the
process says, and that it logged each change of state once.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from tests.orchestrator.faults.services import RedisServer
from tests.support import HttpProcess, dependency_up, not_ready, server_env, until_dependency

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def test_a_killed_redis_turns_the_queue_down_and_a_restarted_one_up(
    tmp_path: Path, private_redis: RedisServer
) -> None:
    env = {
        "SHIELD_QUEUE_URL": private_redis.url,
        "SHIELD_QUEUE_NAME": f"probes-{uuid.uuid4().hex[:8]}",
        "SHIELD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'jobs.sqlite3'}",
        "SHIELD_LIGHTRAG": "false",
        "SHIELD_PROBE_INTERVAL_SECONDS": "0.2",
        "SHIELD_PROBE_TIMEOUT_SECONDS": "2",
        "SHIELD_ORCHESTRATOR_TOKEN": "probe-test-token",
        "SHIELD_LOG_LEVEL": "INFO",
    }
    (tmp_path / "data").mkdir()
    orchestrator = HttpProcess(
        lambda port: ["orchestrator", "--host", "127.0.0.1", "--port", str(port)],
        server_env(tmp_path / "data", **env),
        tmp_path / "orchestrator.log",
    )
    auth = {"Authorization": "Bearer probe-test-token"}
    try:
        orchestrator.wait_ready(timeout=60)
        with httpx.Client(base_url=orchestrator.url, headers=auth, timeout=30) as http:
            until_dependency(http, "queue", 1.0, orchestrator)
            # Without workers this process uses no vector store, embedder or LLM.
            assert dependency_up(http.get("/metrics").text) == {"job_store": 1.0, "queue": 1.0}
            ready = http.get("/ready")
            assert ready.status_code == 200, ready.text
            assert httpx.get(f"{orchestrator.url}/ready").status_code == 401

            private_redis.kill()
            until_dependency(http, "queue", 0.0, orchestrator)
            not_ready(http, "queue", "SHIELD_QUEUE_URL", up=("job_store",))

            private_redis.start()
            until_dependency(http, "queue", 1.0, orchestrator)
            ready = http.get("/ready")
            assert ready.status_code == 200, ready.text
    finally:
        orchestrator.stop()
        private_redis.start()  # the next test of the module starts from a running Redis
    log = (tmp_path / "orchestrator.log").read_text(errors="replace")
    assert log.count("dependency queue is down") == 1, log[-3000:]
    assert log.count("dependency queue is up") == 2, log[-3000:]  # at start, and back
