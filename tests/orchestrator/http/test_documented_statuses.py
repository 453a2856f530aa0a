"""Every status the OpenAPI schema documents is reached by a concrete request, and its body
is the documented model.

Two real orchestrators on uvicorn, both needing a token: ``idle`` (no workers, its job store
a PostgreSQL database reached through a relay the test can cut: the job store outage) and
``live`` (workers, so LightRAG answers queries). The table below names a request per
(operation, status); the test fails when the schema documents a status no row reaches, or a
row's status is not documented.
"""

from __future__ import annotations

import asyncio
import base64
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from knowledge.embeddings.local import LocalEmbedder
from orchestrator.http.routes import Health, Readiness
from orchestrator.jobs.store import JobStore
from orchestrator_client.graph_models import LightRAGAnswer
from orchestrator_client.models import ErrorBody, Job, JobAccepted, JobPage, JobStatus
from tests.orchestrator.cluster import PSQL
from tests.orchestrator.http.conftest import TOKEN, make_settings, running, serving
from tests.orchestrator.http.relay import Relay

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(300)]

AUTH = {"Authorization": f"Bearer {TOKEN}"}
HANG = 60.0  # guards against a hang only
# /ready answers from the job store's probe: short rounds, so an outage shows in a second.
PROBE_INTERVAL = 0.2
MAX_UPLOAD = 1024
MODELS: dict[str, type[BaseModel]] = {
    m.__name__: m for m in (ErrorBody, Job, JobAccepted, JobPage, Readiness, Health, LightRAGAnswer)
}


@dataclass
class Servers:
    idle: httpx.AsyncClient
    live: httpx.AsyncClient
    store: JobStore  # the idle server's
    relay: Relay


def upload(text: str) -> dict[str, Any]:
    content = base64.b64encode(text.encode()).decode()
    return {"kind": "document", "content_base64": content, "filename": "notes.md"}


@pytest.fixture
async def servers(
    tmp_path: Path, docs_dir: Path, local_embedder: LocalEmbedder
) -> AsyncIterator[Servers]:
    database = f"statuses_{uuid.uuid4().hex[:10]}"
    subprocess.run([*PSQL, "-d", "postgres", "-c", f'CREATE DATABASE "{database}"'], check=True)
    relay = Relay(5432)
    await relay.restore()
    common: dict[str, Any] = {"orchestrator_token": TOKEN, "max_upload_bytes": MAX_UPLOAD}
    idle_settings = make_settings(
        tmp_path / "idle",
        docs_dir,
        database_url=f"postgresql://postgres@127.0.0.1:{relay.port}/{database}",
        lightrag_storage="local",
        probe_interval_seconds=PROBE_INTERVAL,
        **common,
    )
    live_settings = make_settings(tmp_path / "live", docs_dir, **common)
    try:
        async with (
            running(idle_settings, local_embedder, workers=False) as idle,
            running(live_settings, local_embedder, workers=True) as live,
            serving(idle.app) as idle_url,
            serving(live.app) as live_url,
            httpx.AsyncClient(base_url=idle_url, timeout=60) as idle_http,
            httpx.AsyncClient(base_url=live_url, timeout=60) as live_http,
        ):
            yield Servers(idle_http, live_http, idle.runtime.store, relay)
            await relay.restore()  # the runtime's stop writes to its store
    finally:
        await relay.close()
        subprocess.run(
            [*PSQL, "-d", "postgres", "-c", f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'],
            check=True,
        )


Request = Callable[[Servers], Awaitable[httpx.Response]]


async def _accepted(s: Servers, body: dict[str, Any], key: str | None = None) -> str:
    headers = {**AUTH, **({"Idempotency-Key": key} if key else {})}
    response = await s.idle.post("/ingest-async", json=body, headers=headers)
    assert response.status_code == 202, response.text
    job_id: str = response.json()["job_id"]
    return job_id


async def _finished_job(s: Servers) -> str:
    job_id = await _accepted(s, upload(f"finished {uuid.uuid4()}"))
    assert await s.store.claim(job_id, "statuses-test", 30.0) is not None
    assert await s.store.finish(job_id, "statuses-test", JobStatus.succeeded)
    return job_id


async def _during_outage(s: Servers, request: Request) -> httpx.Response:
    await s.relay.cut()
    try:
        return await request(s)
    finally:
        await s.relay.restore()


def _ready_turns(status: int, *, outage: bool = False) -> Request:
    """GET /ready until it answers ``status``: it follows the job store's probe, which
    changes state only after several probe results (of earlier outages too)."""

    async def call(s: Servers) -> httpx.Response:
        if outage:
            await s.relay.cut()
        try:
            deadline = time.monotonic() + HANG
            while True:
                response = await s.idle.get("/ready", headers=AUTH)
                if response.status_code == status or time.monotonic() > deadline:
                    return response
                await asyncio.sleep(PROBE_INTERVAL)
        finally:
            if outage:
                await s.relay.restore()

    return call


def _too_large() -> bytes:
    # One byte past the cap of a request carrying MAX_UPLOAD bytes (settings.py).
    from orchestrator.settings import upload_request_bytes

    return b" " * (upload_request_bytes(MAX_UPLOAD) + 1)


async def _ingest_repeat(s: Servers) -> httpx.Response:
    key = str(uuid.uuid4())
    body = upload(f"repeat {key}")
    await _accepted(s, body, key)
    return await s.idle.post("/ingest-async", json=body, headers={**AUTH, "Idempotency-Key": key})


async def _ingest_conflict(s: Servers) -> httpx.Response:
    key = str(uuid.uuid4())
    await _accepted(s, upload("first"), key)
    return await s.idle.post(
        "/ingest-async", json=upload("second"), headers={**AUTH, "Idempotency-Key": key}
    )


async def _cancel_queued(s: Servers) -> httpx.Response:
    job_id = await _accepted(s, upload(f"to cancel {uuid.uuid4()}"))
    return await s.idle.delete(f"/jobs/{job_id}", headers=AUTH)


async def _rebuild_twice(s: Servers) -> httpx.Response:
    body = {"kind": "lightrag_rebuild", "collection": "twice"}
    first = await s.idle.post("/lightrag/rebuild", json=body, headers=AUTH)
    assert first.status_code == 202, first.text
    return await s.idle.post("/lightrag/rebuild", json=body, headers=AUTH)


def _json(client: str, method: str, path: str, **kwargs: Any) -> Request:
    async def call(s: Servers) -> httpx.Response:
        http: httpx.AsyncClient = getattr(s, client)
        return await http.request(method, path, **kwargs)

    return call


def _on_job(method: str, suffix: str = "", **kwargs: Any) -> Request:
    async def call(s: Servers) -> httpx.Response:
        job_id = await _accepted(s, upload(f"job {uuid.uuid4()}"))
        return await s.idle.request(method, f"/jobs/{job_id}{suffix}", headers=AUTH, **kwargs)

    return call


def _outage(request: Request) -> Request:
    async def call(s: Servers) -> httpx.Response:
        return await _during_outage(s, request)

    return call


async def _delete_finished(s: Servers) -> httpx.Response:
    return await s.idle.delete(f"/jobs/{await _finished_job(s)}", headers=AUTH)


async def _events_of_finished(s: Servers) -> httpx.Response:
    # A finished job's stream is its one event, then the end.
    return await s.idle.get(f"/jobs/{await _finished_job(s)}/events", headers=AUTH)


UNKNOWN = f"/jobs/{uuid.uuid4()}"
TOO_LONG = "/jobs/" + "x" * 201
NAIVE = {"query": "which service depends on the ledger?", "mode": "naive"}

# (path, method, status) -> the request that reaches it.
REACHES: dict[tuple[str, str, int], Request] = {
    ("/ingest-async", "post", 202): _json(
        "idle", "POST", "/ingest-async", json=upload("accepted"), headers=AUTH
    ),
    ("/ingest-async", "post", 200): _ingest_repeat,
    ("/ingest-async", "post", 401): _json("idle", "POST", "/ingest-async", json=upload("x")),
    ("/ingest-async", "post", 409): _ingest_conflict,
    ("/ingest-async", "post", 413): _json(
        "idle",
        "POST",
        "/ingest-async",
        content=_too_large(),
        headers={**AUTH, "content-type": "application/json"},
    ),
    ("/ingest-async", "post", 422): _json(
        "idle", "POST", "/ingest-async", json={"kind": "nope"}, headers=AUTH
    ),
    ("/ingest-async", "post", 503): _outage(
        _json("idle", "POST", "/ingest-async", json=upload("in the outage"), headers=AUTH)
    ),
    ("/jobs", "get", 200): _json("idle", "GET", "/jobs", headers=AUTH),
    ("/jobs", "get", 401): _json("idle", "GET", "/jobs"),
    ("/jobs", "get", 422): _json("idle", "GET", "/jobs", params={"limit": 0}, headers=AUTH),
    ("/jobs", "get", 503): _outage(_json("idle", "GET", "/jobs", headers=AUTH)),
    ("/jobs/{job_id}", "get", 200): _on_job("GET"),
    ("/jobs/{job_id}", "get", 401): _json("idle", "GET", UNKNOWN),
    ("/jobs/{job_id}", "get", 404): _json("idle", "GET", UNKNOWN, headers=AUTH),
    ("/jobs/{job_id}", "get", 422): _on_job("GET", params={"wait": 10_000}),
    ("/jobs/{job_id}", "get", 503): _outage(_json("idle", "GET", UNKNOWN, headers=AUTH)),
    ("/jobs/{job_id}", "delete", 200): _cancel_queued,
    ("/jobs/{job_id}", "delete", 401): _json("idle", "DELETE", UNKNOWN),
    ("/jobs/{job_id}", "delete", 404): _json("idle", "DELETE", UNKNOWN, headers=AUTH),
    ("/jobs/{job_id}", "delete", 409): _delete_finished,
    ("/jobs/{job_id}", "delete", 422): _json("idle", "DELETE", TOO_LONG, headers=AUTH),
    ("/jobs/{job_id}", "delete", 503): _outage(_json("idle", "DELETE", UNKNOWN, headers=AUTH)),
    ("/jobs/{job_id}/events", "get", 200): _events_of_finished,
    ("/jobs/{job_id}/events", "get", 401): _json("idle", "GET", f"{UNKNOWN}/events"),
    ("/jobs/{job_id}/events", "get", 404): _json("idle", "GET", f"{UNKNOWN}/events", headers=AUTH),
    ("/jobs/{job_id}/events", "get", 422): _json("idle", "GET", f"{TOO_LONG}/events", headers=AUTH),
    ("/jobs/{job_id}/events", "get", 503): _outage(
        _json("idle", "GET", f"{UNKNOWN}/events", headers=AUTH)
    ),
    ("/health", "get", 200): _json("idle", "GET", "/health"),
    ("/ready", "get", 200): _ready_turns(200),
    ("/ready", "get", 401): _json("idle", "GET", "/ready"),
    ("/ready", "get", 503): _ready_turns(503, outage=True),
    ("/metrics", "get", 200): _json("idle", "GET", "/metrics", headers=AUTH),
    ("/metrics", "get", 401): _json("idle", "GET", "/metrics"),
    ("/lightrag/query", "post", 200): _json(
        "live", "POST", "/lightrag/query", json=NAIVE, headers=AUTH
    ),
    ("/lightrag/query", "post", 401): _json("live", "POST", "/lightrag/query", json=NAIVE),
    ("/lightrag/query", "post", 413): _json(
        "live",
        "POST",
        "/lightrag/query",
        content=_too_large(),
        headers={**AUTH, "content-type": "application/json"},
    ),
    # A graph mode without an LLM and without keywords: refused, saying what to do.
    ("/lightrag/query", "post", 422): _json(
        "live", "POST", "/lightrag/query", json={**NAIVE, "mode": "local"}, headers=AUTH
    ),
    # The idle orchestrator runs no workers and has no shared vector store.
    ("/lightrag/query", "post", 503): _json(
        "idle", "POST", "/lightrag/query", json=NAIVE, headers=AUTH
    ),
    ("/lightrag/rebuild", "post", 202): _json(
        "idle", "POST", "/lightrag/rebuild", json={"kind": "lightrag_rebuild"}, headers=AUTH
    ),
    ("/lightrag/rebuild", "post", 200): _rebuild_twice,
    ("/lightrag/rebuild", "post", 401): _json(
        "idle", "POST", "/lightrag/rebuild", json={"kind": "lightrag_rebuild"}
    ),
    ("/lightrag/rebuild", "post", 413): _json(
        "idle",
        "POST",
        "/lightrag/rebuild",
        content=_too_large(),
        headers={**AUTH, "content-type": "application/json"},
    ),
    ("/lightrag/rebuild", "post", 422): _json(
        "idle",
        "POST",
        "/lightrag/rebuild",
        json={"kind": "lightrag_rebuild", "metadata": {"team": "x"}},
        headers=AUTH,
    ),
    ("/lightrag/rebuild", "post", 503): _outage(
        _json("idle", "POST", "/lightrag/rebuild", json={"kind": "lightrag_rebuild"}, headers=AUTH)
    ),
}


# Documented, and not reached here: LightRAG answering a query with a failure of its own
# (not "no results") needs LightRAG itself to break.
NOT_REACHED_HERE = {("/lightrag/query", "post", 502)}


def documented(schema: dict[str, Any]) -> dict[tuple[str, str, int], dict[str, Any]]:
    found = {}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                found[(path, method, int(status))] = response
    return found


def model_of(response: dict[str, Any]) -> type[BaseModel] | None:
    content = response.get("content", {}).get("application/json", {})
    ref = content.get("schema", {}).get("$ref")
    return MODELS[ref.rsplit("/", 1)[-1]] if ref else None


async def test_every_documented_status_is_reached_with_its_documented_body(
    servers: Servers,
) -> None:
    schema = (await servers.idle.get("/openapi.json", headers=AUTH)).json()
    statuses = documented(schema)
    assert set(REACHES) | NOT_REACHED_HERE == set(statuses), {
        "documented, no request reaches it": sorted(set(statuses) - set(REACHES)),
        "reached, not documented": sorted(set(REACHES) - set(statuses)),
    }
    missed = []
    for (path, method, status), request in REACHES.items():
        response = await request(servers)
        if response.status_code != status:
            missed.append(f"{method.upper()} {path}: {response.status_code} not {status}")
            continue
        model = model_of(statuses[(path, method, status)])
        if status == 200 and path.endswith("/events"):
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.text.startswith("event: job\ndata: "), response.text
            Job.model_validate_json(response.text.split("data: ", 1)[1].split("\n", 1)[0])
        elif model is not None:
            body = response.json()
            model.model_validate(body)
            if model is ErrorBody:
                assert set(body) == {"error"}, body
        if status == 503:
            assert response.headers.get("retry-after", "").isdigit(), (path, method)
        if status == 401:
            assert response.headers["www-authenticate"].startswith("Bearer")
    assert not missed, missed
