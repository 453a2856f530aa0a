"""`shield-mcp worker` serves its own /metrics (SHIELD_METRICS_PORT): real worker and
orchestrator processes on this machine's PostgreSQL and Redis, scraped over HTTP, checked
by Prometheus's own `promtool check metrics`."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.main import worker_command
from tests.deploy.tools import require_tool
from tests.orchestrator.cluster import REDIS_URL, cluster_environment
from tests.support import HttpProcess, bound_socket, server_env

TOKEN = "worker-metrics-token"
HANG = 240.0  # guards against a hang only
JOBS = 4


def on_metrics_port(env: dict[str, str]) -> Callable[[int], list[str]]:
    """The worker's command for HttpProcess, which picks the port: the worker reads it
    from its environment, which HttpProcess passes after calling this."""

    def command(port: int) -> list[str]:
        env["SHIELD_METRICS_PORT"] = str(port)
        return ["worker"]

    return command


@pytest.fixture
def cluster_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    with cluster_environment(
        tmp_path,
        "shield_wmetrics",
        SHIELD_ORCHESTRATOR_TOKEN=TOKEN,
        SHIELD_LEASE_SECONDS="5",
        SHIELD_LIGHTRAG="false",  # not what is measured here; keeps the workers light
    ) as env:
        yield env


def start(tmp_path: Path, env: dict[str, str], name: str) -> HttpProcess:
    """The orchestrator on its API port, or a worker (``name`` worker-…) on a metrics port."""
    data_dir = tmp_path / f"{name}-data"
    data_dir.mkdir()
    proc_env = server_env(data_dir, **env)
    command = (
        on_metrics_port(proc_env)
        if name.startswith("worker")
        else lambda port: ["orchestrator", "--host", "127.0.0.1", "--port", str(port)]
    )
    proc = HttpProcess(command, proc_env, tmp_path / f"{name}.log")
    try:
        proc.wait_ready(timeout=120)
    except BaseException:
        proc.stop()
        raise
    return proc


def samples(text: str, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                total += sample.value
    return total


def promtool_check(promtool: str, exposition: str) -> None:
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=exposition, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.timeout(400)
def test_workers_serve_metrics_behind_the_token_and_their_counters_add_up(
    tmp_path: Path, cluster_env: dict[str, str]
) -> None:
    promtool = require_tool("promtool")
    auth = {"Authorization": f"Bearer {TOKEN}"}
    procs: list[HttpProcess] = []
    try:
        orchestrator = start(tmp_path, cluster_env, "orchestrator")
        procs.append(orchestrator)
        for name in ("worker-a", "worker-b"):
            procs.append(start(tmp_path, cluster_env, name))
        workers = procs[1:]

        for worker in workers:
            assert httpx.get(f"{worker.url}/health").status_code == 200  # liveness: open
            assert httpx.get(f"{worker.url}/metrics").status_code == 401
            wrong = {"Authorization": "Bearer not-the-token"}
            assert httpx.get(f"{worker.url}/metrics", headers=wrong).status_code == 401
            answer = httpx.get(f"{worker.url}/metrics", headers=auth)
            assert answer.status_code == 200
            assert answer.headers["content-type"].startswith("text/plain")

        api = httpx.Client(base_url=orchestrator.url, headers=auth, timeout=30.0)
        ids = []
        for i in range(JOBS):
            text = f"Job {i} of the metrics test writes about kite number {i}."
            body = {
                "kind": "document",
                "content_base64": base64.b64encode(text.encode()).decode(),
                "filename": f"kite-{i}.txt",
            }
            reply = api.post("/ingest-async", json=body)
            assert reply.status_code == 202, reply.text
            ids.append(reply.json()["job_id"])
        deadline = time.monotonic() + HANG
        for job_id in ids:
            while (job := api.get(f"/jobs/{job_id}", params={"wait": 5}).json())["status"] in (
                "queued",
                "running",
            ):
                assert time.monotonic() < deadline, job
            assert job["status"] == "succeeded", job

        # A worker counts a job right after recording its end: wait for the last ones.
        def totals() -> tuple[float, float, float]:
            texts = [httpx.get(f"{w.url}/metrics", headers=auth).text for w in workers]
            return (
                sum(samples(t, "jobs_total", kind="document", status="succeeded") for t in texts),
                sum(
                    samples(t, "job_stage_duration_seconds_count", kind="document", stage="embed")
                    for t in texts
                ),
                sum(
                    samples(t, "embedding_duration_seconds_count", purpose="document")
                    for t in texts
                ),
            )

        while (counted := totals())[0] < JOBS:
            assert time.monotonic() < deadline, counted
        assert counted == (JOBS, JOBS, JOBS)

        for worker in workers:
            exposition = httpx.get(f"{worker.url}/metrics", headers=auth).text
            assert 'shield_build_info{version="' in exposition
            promtool_check(promtool, exposition)
        promtool_check(promtool, api.get("/metrics").text)
        api.close()
        for worker in workers:
            assert worker.stop() == 0, worker.log()[-3000:]
    finally:
        for proc in procs:
            proc.stop()


def worker_exit(monkeypatch: pytest.MonkeyPatch, data_dir: Path, **settings: str) -> int:
    """`shield-mcp worker`'s entry point, in this process, with these settings."""
    env = {
        "SHIELD_DATA_DIR": str(data_dir),
        "SHIELD_DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/shield_never_created",
        "SHIELD_QUEUE_URL": REDIS_URL,
        **settings,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return asyncio.run(worker_command())


def test_metrics_on_an_open_address_without_a_token_are_refused_at_start(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], data_dir: Path
) -> None:
    code = worker_exit(
        monkeypatch, data_dir, SHIELD_METRICS_PORT="9101", SHIELD_METRICS_HOST="0.0.0.0"
    )
    assert code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert "SHIELD_ORCHESTRATOR_TOKEN" in lines[0] and "0.0.0.0" in lines[0]


def test_a_taken_metrics_port_fails_at_start_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], data_dir: Path
) -> None:
    with bound_socket() as taken:
        port = taken.getsockname()[1]
        taken.listen()
        code = worker_exit(monkeypatch, data_dir, SHIELD_METRICS_PORT=str(port))
    assert code == 2
    err = capsys.readouterr().err
    assert f"127.0.0.1:{port}" in err
    assert "address already in use" in err  # what tests/support.HttpProcess retries on


def test_a_bad_metrics_port_is_a_settings_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], data_dir: Path
) -> None:
    assert worker_exit(monkeypatch, data_dir, SHIELD_METRICS_PORT="70000") == 2
    assert "SHIELD_METRICS_PORT" in capsys.readouterr().err
