"""A real orchestrator for the API tests: OrchestratorRuntime on SQLite in a tmp dir with the
in-process queue, the real local embedder and the embedded vector store.

``idle`` runtimes run no workers, so their jobs stay queued: the tests that need a job to
hold still (cancel a queued job, long-poll timeouts) use those. ``live`` runtimes run jobs.
"""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from knowledge.embeddings.local import LocalEmbedder
from knowledge.service import KnowledgeService
from knowledge.vectorstore.edge import EdgeVectorStore
from orchestrator.composition import Orchestrator, compose_orchestrator
from orchestrator.runtime import OrchestratorRuntime
from orchestrator.settings import OrchestratorSettings
from tests.support import bound_socket

BASE = "http://orchestrator.test"
TOKEN = "s3cret-orchestrator-token"
TERMINAL = {"succeeded", "failed", "cancelled"}


@dataclass
class Api:
    http: httpx.AsyncClient
    runtime: OrchestratorRuntime
    settings: OrchestratorSettings
    app: FastAPI


def make_settings(data_dir: Path, docs_dir: Path, **extra: Any) -> OrchestratorSettings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "ingest_roots": [docs_dir],
        "crawl_allow_private": True,  # the test sites run on 127.0.0.1
        "max_wait_seconds": 10.0,
        "worker_concurrency": 2,
        **extra,
    }
    return OrchestratorSettings(**values)


@asynccontextmanager
async def running(
    settings: OrchestratorSettings, embedder: LocalEmbedder, *, workers: bool
) -> AsyncIterator[Orchestrator]:
    service = KnowledgeService(
        embedder, EdgeVectorStore(settings.data_dir), default_collection=settings.collection
    )
    orchestrator = compose_orchestrator(settings, service=service, run_workers=workers)
    await orchestrator.runtime.start()
    try:
        yield orchestrator
    finally:
        await orchestrator.runtime.stop()
        await service.close()


@asynccontextmanager
async def api_for(
    settings: OrchestratorSettings, embedder: LocalEmbedder, *, workers: bool
) -> AsyncIterator[Api]:
    async with running(settings, embedder, workers=workers) as orchestrator:
        transport = httpx.ASGITransport(app=orchestrator.app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
            yield Api(http, orchestrator.runtime, settings, orchestrator.app)


@asynccontextmanager
async def serving(app: Any, sock: socket.socket | None = None) -> AsyncIterator[str]:
    """The app on a real uvicorn server on 127.0.0.1, in this event loop; yields its URL.

    It listens on ``sock`` (a socket bound beforehand, see ``support.bound_socket``), by
    default one bound here: the port is never free for another process to take.
    """
    sock = sock or bound_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()  # raises why it could not start
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
def settings(data_dir: Path, docs_dir: Path) -> OrchestratorSettings:
    return make_settings(data_dir, docs_dir)


@pytest.fixture
async def idle(settings: OrchestratorSettings, local_embedder: LocalEmbedder) -> AsyncIterator[Api]:
    """No workers: every job stays queued until the test changes it."""
    async with api_for(settings, local_embedder, workers=False) as api:
        yield api


@pytest.fixture
async def live(settings: OrchestratorSettings, local_embedder: LocalEmbedder) -> AsyncIterator[Api]:
    async with api_for(settings, local_embedder, workers=True) as api:
        yield api


# The pipeline resolves a crawl's host when it accepts the job, and this machine has no DNS:
# loopback it is (private addresses are allowed above). Nothing listens there; jobs that
# would crawl it are never run by the tests.
SITE = "http://127.0.0.1:9"


def crawl(url: str = f"{SITE}/start", **extra: Any) -> dict[str, Any]:
    return {"kind": "crawl", "url": url, **extra}


def markdown_doc(text: str, filename: str = "notes.md", **extra: Any) -> dict[str, Any]:
    return {
        "kind": "document",
        "content_base64": base64.b64encode(text.encode()).decode(),
        "filename": filename,
        **extra,
    }


async def submit(api: Api, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    response = await api.http.post("/ingest-async", json=body, headers=headers)
    assert response.status_code in (200, 202), response.text
    data: dict[str, Any] = response.json()
    return data


async def wait_terminal(api: Api, job_id: str, limit: float = 120.0) -> dict[str, Any]:
    """Long-polls until the job ends (bounded: a stuck job fails the test)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while loop.time() < deadline:
        response = await api.http.get(f"/jobs/{job_id}", params={"wait": 5})
        job: dict[str, Any] = response.json()
        if job["status"] in TERMINAL:
            return job
    raise AssertionError(f"job {job_id} did not finish within {limit} s")


def error_of(response: httpx.Response) -> dict[str, str]:
    """The ErrorBody every 4xx/5xx carries (and nothing else)."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    error: dict[str, str] = body["error"]
    return error


@pytest.fixture
async def guarded_url(
    data_dir: Path, docs_dir: Path, local_embedder: LocalEmbedder
) -> AsyncIterator[str]:
    """A real uvicorn server of an orchestrator that needs TOKEN."""
    settings = make_settings(data_dir, docs_dir, orchestrator_token=TOKEN)
    async with (
        api_for(settings, local_embedder, workers=False) as api,
        serving(api.app) as url,
    ):
        yield url
