"""Job store and worker fixtures: real SQLite files and a real PostgreSQL database.

PostgreSQL runs on this machine (127.0.0.1:5432, user postgres, trust auth); each test
session gets a database of its own, dropped at the end. The PostgreSQL case of
``database_url`` is marked ``postgres``: without a PostgreSQL it is skipped (tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import base64
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from knowledge.embeddings.local import LocalEmbedder
from knowledge.service import KnowledgeService
from knowledge.vectorstore.edge import EdgeVectorStore
from orchestrator.composition import compose_orchestrator
from orchestrator.jobs.recovery import Sweeper
from orchestrator.jobs.service import JobService
from orchestrator.jobs.worker import new_worker_id
from orchestrator.runtime import OrchestratorRuntime
from orchestrator.settings import OrchestratorSettings
from orchestrator_client.models import DocumentRequest, Job

PSQL = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-q"]


def psql(sql: str, database: str = "postgres") -> None:
    subprocess.run([*PSQL, "-d", database, "-c", sql], check=True, capture_output=True)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    name = f"shield_jobs_test_{uuid.uuid4().hex[:10]}"
    psql(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_url(database: str) -> str:
    return f"postgresql://postgres@127.0.0.1:5432/{database}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str | None:
    """SHIELD_DATABASE_URL: unset (SQLite under the data dir) or a fresh PostgreSQL table."""
    if request.param == "sqlite":
        return None
    name = request.getfixturevalue("pg_database")
    psql("DROP TABLE IF EXISTS shield_jobs", name)
    return pg_url(name)


@pytest.fixture
def docs_dir(tmp_path: Path) -> Path:
    path = tmp_path / "docs"
    path.mkdir()
    return path


SettingsFactory = Callable[..., OrchestratorSettings]


@pytest.fixture
def make_settings(data_dir: Path, docs_dir: Path, database_url: str | None) -> SettingsFactory:
    def make(**extra: Any) -> OrchestratorSettings:
        values: dict[str, Any] = {
            "data_dir": data_dir,
            "database_url": database_url,
            "ingest_roots": [docs_dir],
            "crawl_allow_private": True,  # the test sites run on 127.0.0.1
            "worker_concurrency": 2,
            "lease_seconds": 3.0,
            "retry_backoff_seconds": 0.1,
            "shutdown_grace_seconds": 5.0,
            **extra,
        }
        return OrchestratorSettings(**values)

    return make


@asynccontextmanager
async def running(
    settings: OrchestratorSettings,
    embedder: LocalEmbedder | None = None,
    *,
    workers: bool,
    **kwargs: Any,
) -> AsyncIterator[OrchestratorRuntime]:
    """A started runtime; with an embedder, on the real local model and embedded store."""
    service = None
    if embedder is not None:
        service = KnowledgeService(
            embedder, EdgeVectorStore(settings.data_dir), default_collection=settings.collection
        )
    runtime = compose_orchestrator(settings, service=service, run_workers=workers, **kwargs).runtime
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()
        if service is not None:
            await service.close()


def sweeper_of(runtime: OrchestratorRuntime) -> Sweeper:
    """A sweeper like the runtime's own (another process's, say) on the same store."""
    recovery = runtime.recovery
    return Sweeper(
        runtime.store,
        runtime.queue,
        lease_seconds=recovery.lease_seconds,
        max_attempts=recovery.max_attempts,
    )


@pytest.fixture
async def idle(make_settings: SettingsFactory) -> AsyncIterator[OrchestratorRuntime]:
    """A runtime without workers: its jobs stay queued until a test moves them."""
    async with running(make_settings(), workers=False) as runtime:
        yield runtime


def dead_worker_id() -> str:
    """The id a worker of a process of this machine that has ended would have had."""
    ended = subprocess.Popen(["true"])
    ended.wait()
    host, _pid, namespace, tail = new_worker_id().split(":")
    return f"{host}:{ended.pid}:{namespace}:{tail}"


def worker_id_of(pid: int, host: str | None = None) -> str:
    """A well-formed worker id for a process ``pid`` of this machine (or of ``host``)."""
    this_host, _pid, namespace, tail = new_worker_id().split(":")
    return f"{host or this_host}:{pid}:{namespace}:{tail}"


def text_request(text: str, filename: str = "note.txt", **extra: Any) -> DocumentRequest:
    return DocumentRequest(
        content_base64=base64.b64encode(text.encode()).decode(), filename=filename, **extra
    )


HANG_SECONDS = 180.0  # only guards against a hang; no test asserts on time


def is_terminal(job: Job) -> bool:
    return job.status.terminal


async def until(jobs: JobService, job_id: str, check: Callable[[Job], bool] = is_terminal) -> Job:
    """Long-polls the job until ``check`` holds (by default: until it is done)."""
    async with asyncio.timeout(HANG_SECONDS):
        job = await jobs.get(job_id)
        while not check(job):
            job = await jobs.wait(job_id, since=job.updated_at, timeout=2.0)
        return job
