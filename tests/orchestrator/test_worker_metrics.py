"""`shield-mcp worker` serves its own /metrics and /ready (SHIELD_METRICS_PORT): real worker
and orchestrator processes on this machine's PostgreSQL and Redis, scraped over HTTP, checked
by Prometheus's own `promtool check metrics`; /ready also in this process, on a real socket."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from orchestrator import metrics_server
from orchestrator.composition import compose_orchestrator
from orchestrator.main import worker_command
from orchestrator.runtime import OrchestratorRuntime
from orchestrator.settings import OrchestratorSettings
from tests.deploy.tools import require_tool
from tests.orchestrator.cluster import REDIS_URL, cluster_environment
from tests.orchestrator.conftest import allow_connections
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
            assert httpx.get(f"{worker.url}/ready").status_code == 401
            deadline = time.monotonic() + HANG  # /health answers before the worker started
            while (ready := httpx.get(f"{worker.url}/ready", headers=auth)).status_code != 200:
                assert ready.json()["status"] == "not_ready"
                assert time.monotonic() < deadline, ready.text
                time.sleep(0.1)
            assert set(ready.json()["components"]) == {
                "job_store",
                "queue",
                "vector_store",
                "embedder",
            }

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


class ReadyClient:
    """HTTP to a worker's metrics server on ``sock``, serving ``runtime``'s /ready."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def ready(self, token: str | None = TOKEN) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await self.http.get("/ready", headers=headers)


@contextlib.asynccontextmanager
async def worker_server(runtime: OrchestratorRuntime) -> AsyncIterator[ReadyClient]:
    sock = metrics_server.bind("127.0.0.1", 0)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    readiness = metrics_server.worker_readiness(runtime)
    async with (
        metrics_server.serving(sock, TOKEN, readiness),
        httpx.AsyncClient(base_url=url) as http,
    ):
        async with asyncio.timeout(HANG):  # the server listens once its task has run
            while True:
                try:
                    assert (await http.get("/health")).status_code == 200  # open
                    break
                except httpx.ConnectError:
                    await asyncio.sleep(0.05)
        yield ReadyClient(http)


def worker_settings(data_dir: Path, database: str) -> OrchestratorSettings:
    return OrchestratorSettings(
        data_dir=data_dir,
        database_url=f"postgresql://postgres@127.0.0.1:5432/{database}",
        queue_url=REDIS_URL,
        queue_name=f"shield-test-{uuid.uuid4().hex[:10]}",
        lightrag=False,
        probe_interval_seconds=0.1,  # the test waits for the probes to see the outage
        probe_failures_down=1,
    )


def drop_stream(queue: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.delete(queue, f"autoclaim:{queue}:workers:{queue}")
    client.close()


async def refusals(client: ReadyClient) -> list[int]:
    return [(await client.ready(None)).status_code, (await client.ready("no")).status_code]


async def test_a_worker_that_is_not_running_is_not_ready(data_dir: Path) -> None:
    settings = worker_settings(data_dir, "shield_never_opened")
    runtime = compose_orchestrator(settings, run_workers=True).runtime
    async with worker_server(runtime) as client:
        assert await refusals(client) == [401, 401]
        answer = await client.ready()
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "5"
    assert answer.json() == {
        "status": "not_ready",
        "components": {"worker": "not running (starting or stopping)"},
        "error": {
            "code": "not_ready",
            "message": "Not ready: worker: not running (starting or stopping)",
        },
    }


@pytest.mark.postgres
@pytest.mark.redis
async def test_a_running_worker_s_ready_follows_its_probes(data_dir: Path, database: str) -> None:
    settings = worker_settings(data_dir, database)
    runtime = compose_orchestrator(settings, run_workers=True).runtime
    try:
        await runtime.start()
        async with worker_server(runtime) as client:
            assert await refusals(client) == [401, 401]
            up = await client.ready()
            assert up.status_code == 200, up.text
            assert up.json() == {
                "status": "ready",
                "components": dict.fromkeys(
                    ["job_store", "queue", "vector_store", "embedder"], "ok"
                ),
                "error": None,
            }

            await runtime.store.engine.dispose()  # no pooled connection survives this
            allow_connections(database, False)
            async with asyncio.timeout(HANG):  # until a probe round has seen it
                while True:
                    down = await client.ready()
                    if down.status_code != 200:
                        break
                    await asyncio.sleep(0.05)
            allow_connections(database, True)
    finally:
        await runtime.stop()
        drop_stream(settings.queue_name)
    assert down.status_code == 503
    body = down.json()
    assert body["status"] == "not_ready"
    broken = {name: state for name, state in body["components"].items() if state != "ok"}
    assert list(broken) == ["job_store"]
    assert body["error"]["message"] == f"Not ready: job_store: {broken['job_store']}"
