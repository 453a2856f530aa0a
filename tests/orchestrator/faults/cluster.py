"""A distributed deployment on private Redis and PostgreSQL servers the test may kill:
`shield-mcp orchestrator` and `shield-mcp worker` processes, an async client for the job
API, and what the vector store holds afterwards."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.orchestrator.cluster import Proc
from tests.orchestrator.faults.services import PostgresServer, RedisServer
from tests.orchestrator.test_distributed import stored_points
from tests.support import HttpProcess, server_env

HANG = 150.0  # guards against a hang only
TERMINAL = {"succeeded", "failed", "cancelled"}


def upload(text: str, name: str) -> dict[str, Any]:
    return {
        "kind": "document",
        "content_base64": base64.b64encode(text.encode()).decode(),
        "filename": name,
    }


class FaultCluster:
    def __init__(self, tmp_path: Path, redis: RedisServer, postgres: PostgresServer) -> None:
        self.tmp_path = tmp_path
        self.redis = redis
        self.postgres = postgres
        docs = tmp_path / "docs"
        docs.mkdir(exist_ok=True)
        self.env = {
            "SHIELD_DATABASE_URL": postgres.create_database(f"faults_{uuid.uuid4().hex[:8]}"),
            "SHIELD_QUEUE_URL": redis.url,
            "SHIELD_QUEUE_NAME": f"faults-{uuid.uuid4().hex[:8]}",
            "SHIELD_LEASE_SECONDS": "5",
            "SHIELD_RETRY_BACKOFF_SECONDS": "0.2",
            "SHIELD_SHUTDOWN_GRACE_SECONDS": "2",
            "SHIELD_INGEST_ROOTS": str(docs),
            "SHIELD_CRAWL_ALLOW_PRIVATE": "true",  # the test site runs on 127.0.0.1
            # A page held back by the test answers after the outage, not past this.
            "SHIELD_CRAWL_PAGE_TIMEOUT": "90",
            "SHIELD_WORKER_CONCURRENCY": "2",
            # The job store's outage is the subject: LightRAG's own PostgreSQL tables
            # would add failures of another part (its reports are tested elsewhere).
            "SHIELD_LIGHTRAG": "false",
            "SHIELD_LOG_LEVEL": "INFO",
        }
        self.worker_dir = tmp_path / "worker-data"
        self.orchestrator: HttpProcess | None = None
        self.worker: Proc | None = None
        self.http = httpx.AsyncClient(timeout=30.0)

    def start(self) -> None:
        data = self.tmp_path / "orchestrator-data"
        data.mkdir(exist_ok=True)
        self.orchestrator = HttpProcess(
            lambda port: ["orchestrator", "--host", "127.0.0.1", "--port", str(port)],
            server_env(data, **self.env),
            self.tmp_path / "orchestrator.log",
        )
        self.orchestrator.wait_ready(timeout=60)
        self.http.base_url = httpx.URL(self.orchestrator.url)
        self.worker_dir.mkdir(exist_ok=True)
        self.worker = Proc(
            ["worker"], server_env(self.worker_dir, **self.env), self.tmp_path / "worker.log"
        )

    @property
    def url(self) -> str:
        assert self.orchestrator is not None
        return self.orchestrator.url

    def alive(self) -> bool:
        procs = [self.orchestrator.proc if self.orchestrator else None, self.worker_proc]
        return all(p is not None and p.poll() is None for p in procs)

    @property
    def worker_proc(self) -> Any:
        return self.worker.proc if self.worker is not None else None

    async def submit(self, body: dict[str, Any]) -> str:
        reply = await self.http.post("/ingest-async", json=body)
        assert reply.status_code == 202, reply.text
        return str(reply.json()["job_id"])

    async def job(self, job_id: str, wait: float | None = None) -> dict[str, Any]:
        reply = await self.http.get(f"/jobs/{job_id}", params={"wait": wait} if wait else None)
        assert reply.status_code == 200, reply.text
        result: dict[str, Any] = reply.json()
        return result

    async def until(self, job_id: str, check: Any) -> dict[str, Any]:
        deadline = time.monotonic() + HANG
        job = await self.job(job_id)
        while not check(job):
            if time.monotonic() > deadline:
                raise AssertionError(f"{job}\n{self.logs()}")
            job = await self.job(job_id, wait=2)
        return job

    async def all_ended(self, job_ids: list[str]) -> dict[str, dict[str, Any]]:
        return {j: await self.until(j, lambda job: job["status"] in TERMINAL) for j in job_ids}

    def logs(self) -> str:
        parts = []
        for name, proc in (("orchestrator", self.orchestrator), ("worker", self.worker)):
            if proc is not None:
                parts.append(f"--- {name} ---\n{proc.log()[-4000:]}")
        return "\n".join(parts)

    def points_by_source(self) -> dict[str, list[str]]:
        """Texts stored per source, read once the worker has stopped (it holds the store)."""
        out: dict[str, list[str]] = {}
        for payload in stored_points(self.worker_dir):
            out.setdefault(payload["metadata"]["source"], []).append(payload["document"])
        return out

    def stop_worker(self) -> int:
        assert self.worker is not None
        code = self.worker.stop()
        return code

    async def aclose(self) -> None:
        await self.http.aclose()
        for proc in (self.worker, self.orchestrator):
            if proc is not None:
                proc.stop()


async def outage(seconds_left: float) -> None:
    """The rest of an outage, after the calls the test makes during it."""
    if seconds_left > 0:
        await asyncio.sleep(seconds_left)
