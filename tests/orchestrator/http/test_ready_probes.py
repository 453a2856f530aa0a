"""/ready and dependency_up follow the runtime's probes, with their hysteresis.

The runtimes here run their prober with an interval no test waits out: its first round
runs at start, every later one is driven by the test (``prober.run_once()``), so each
assertion follows a known number of probe results. Redis is this machine's, reached
through a relay the test cuts (an outage no other test sees); the LLM is the Ollama
stand-in at the HTTP boundary (no LLM server can run here).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from knowledge.embeddings.local import LocalEmbedder
from shield_common.probes import DependencyProbe, Prober
from tests.ollama_standin import OllamaStandIn
from tests.orchestrator.http.conftest import Api, api_for, make_settings
from tests.orchestrator.http.relay import Relay

NEVER = 3600.0  # the prober's interval: no second round runs by itself
HANG = 60.0  # guards against a hang only


def gauge(dependency: str) -> float | None:
    return REGISTRY.get_sample_value("dependency_up", {"dependency": dependency})


def prober_of(api: Api) -> Prober:
    assert api.runtime.prober is not None and api.runtime.prober.running
    return api.runtime.prober


def probe_named(api: Api, name: str) -> DependencyProbe:
    return next(p for p in prober_of(api).probes if p.name == name)


async def until_results(api: Api, name: str, *, failures: int = 0, successes: int = 0) -> None:
    """Drives probe rounds until the named probe has that many results in a row."""
    probe = probe_named(api, name)
    deadline = time.monotonic() + HANG
    while probe.failures < failures or probe.successes < successes:
        assert time.monotonic() < deadline, (probe.failures, probe.successes, probe.reason)
        await prober_of(api).run_once()


@pytest.fixture
async def relay() -> AsyncIterator[Relay]:
    relay = Relay(6379)
    await relay.restore()
    try:
        yield relay
    finally:
        await relay.close()


@pytest.fixture
async def queued(
    tmp_path: Path, docs_dir: Path, local_embedder: LocalEmbedder, relay: Relay
) -> AsyncIterator[Api]:
    """An orchestrator without workers whose queue is Redis through the relay."""
    queue = f"shield-test-probes-{uuid.uuid4().hex[:10]}"
    settings = make_settings(
        tmp_path / "data",
        docs_dir,
        queue_url=f"redis://127.0.0.1:{relay.port}/0",
        queue_name=queue,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'jobs.sqlite3'}",
        lightrag=False,
        probe_interval_seconds=NEVER,
        probe_timeout_seconds=5.0,
    )
    try:
        async with api_for(settings, local_embedder, workers=False) as api:
            yield api
            await relay.restore()  # the runtime's stop talks to Redis
    finally:
        import redis

        client = redis.Redis(port=6379)
        client.delete(queue, f"autoclaim:{queue}:workers:{queue}")
        client.close()


@pytest.mark.redis
async def test_ready_turns_503_after_three_failed_probes_and_back_after_two(
    queued: Api, relay: Relay
) -> None:
    ready = await queued.http.get("/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json()["components"] == {"job_store": "ok", "queue": "ok"}
    assert gauge("queue") == 1.0

    await relay.cut()
    await until_results(queued, "queue", failures=1)
    assert (await queued.http.get("/ready")).status_code == 200  # one blip changes nothing
    await until_results(queued, "queue", failures=2)
    assert (await queued.http.get("/ready")).status_code == 200
    assert gauge("queue") == 1.0
    await until_results(queued, "queue", failures=3)
    ready = await queued.http.get("/ready")
    assert ready.status_code == 503, ready.text
    body = ready.json()
    assert body["components"]["job_store"] == "ok"
    assert "SHIELD_QUEUE_URL" in body["components"]["queue"]
    assert body["error"]["code"] == "not_ready" and "queue: " in body["error"]["message"]
    assert ready.headers["retry-after"]
    assert gauge("queue") == 0.0
    metrics = (await queued.http.get("/metrics")).text
    assert 'dependency_up{dependency="queue"} 0.0' in metrics

    await relay.restore()
    await until_results(queued, "queue", successes=1)
    assert (await queued.http.get("/ready")).status_code == 503  # one success is not enough
    await until_results(queued, "queue", successes=2)
    assert (await queued.http.get("/ready")).status_code == 200
    assert gauge("queue") == 1.0


@pytest.fixture
async def with_llm(
    data_dir: Path, docs_dir: Path, local_embedder: LocalEmbedder, standin: OllamaStandIn
) -> AsyncIterator[Api]:
    settings = make_settings(
        data_dir, docs_dir, llm="ollama", ollama_host=standin.url, probe_interval_seconds=NEVER
    )
    async with api_for(settings, local_embedder, workers=True) as api:
        yield api


async def test_the_llm_is_probed_by_its_model_list_and_does_not_fail_ready(
    with_llm: Api, standin: OllamaStandIn
) -> None:
    ready = await with_llm.http.get("/ready")
    assert ready.status_code == 200, ready.text
    assert set(ready.json()["components"]) == {"job_store", "queue", "vector_store", "embedder"}
    # /ready waits for the required probes only: let the LLM's first round end too, so the
    # failures below are counted from a known start.
    await probe_named(with_llm, "llm").known()
    assert gauge("llm") == 1.0
    assert standin.calls == 0  # a model list, no chat call
    assert ("GET", "/api/tags", None) in standin.service.requests

    standin.fail = True
    await until_results(with_llm, "llm", failures=2)
    assert gauge("llm") == 1.0
    await until_results(with_llm, "llm", failures=3)
    assert gauge("llm") == 0.0
    llm = probe_named(with_llm, "llm")
    assert llm.status == (
        f"the LLM at {standin.url}/api/tags answered HTTP 500; check SHIELD_OLLAMA_HOST and "
        "that Ollama runs"
    )
    # LightRAG reports an LLM's failures in job results and answers: the API stays ready.
    assert (await with_llm.http.get("/ready")).status_code == 200

    standin.fail = False
    await until_results(with_llm, "llm", successes=2)
    assert gauge("llm") == 1.0


async def test_a_stopped_runtime_exports_no_dependency_state(
    data_dir: Path, docs_dir: Path, local_embedder: LocalEmbedder
) -> None:
    settings = make_settings(data_dir, docs_dir, probe_interval_seconds=NEVER)
    async with api_for(settings, local_embedder, workers=True) as api:
        await api.http.get("/ready")
        assert gauge("job_store") == 1.0 and gauge("embedder") == 1.0
    assert gauge("job_store") is None and gauge("embedder") is None
