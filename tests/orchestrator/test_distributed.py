"""Distributed mode on this machine's real Redis and PostgreSQL: `shield-mcp orchestrator`
and `shield-mcp worker` as separate processes sharing one queue and one job store.

The embedded vector store admits one process per data dir and no Qdrant server can run
here, so: (a) a worker is SIGKILLed mid-job and a second one starts on the same data dir
after it; (b) two live workers each own a data dir. In production concurrent workers
share a Qdrant server (SHIELD_QDRANT_URL).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.documents import PHRASES, write_all
from tests.orchestrator.cluster import Proc, cluster_environment
from tests.sites import serve_site
from tests.support import HttpProcess, server_env

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.timeout(300),  # processes start, import docling, crawl and convert
]

HANG = 240.0  # guards against a hang only


@pytest.fixture
def cluster_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    with cluster_environment(
        tmp_path,
        "shield_dist",
        SHIELD_LEASE_SECONDS="5",  # above the longest event-loop stall (imports) here
        SHIELD_CRAWL_ALLOW_PRIVATE="true",  # the test site runs on 127.0.0.1
        SHIELD_WORKER_CONCURRENCY="2",
    ) as env:
        yield env


class Cluster:
    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.tmp_path = tmp_path
        self.env = env
        self.procs: list[Proc | HttpProcess] = []
        self.http = httpx.Client(timeout=30.0)  # its base URL once the orchestrator is up

    def _start(self, args: list[str], data_dir: Path, name: str) -> Proc:
        data_dir.mkdir(parents=True, exist_ok=True)
        proc = Proc(args, server_env(data_dir, **self.env), self.tmp_path / f"{name}.log")
        self.procs.append(proc)
        return proc

    def orchestrator(self) -> HttpProcess:
        data_dir = self.tmp_path / "orchestrator-data"
        data_dir.mkdir(parents=True, exist_ok=True)
        proc = HttpProcess(
            lambda port: ["orchestrator", "--host", "127.0.0.1", "--port", str(port)],
            server_env(data_dir, **self.env),
            self.tmp_path / "orchestrator.log",
        )
        self.procs.append(proc)
        proc.wait_ready(timeout=60)
        self.http.base_url = httpx.URL(proc.url)
        return proc

    def worker(self, data_dir: Path, name: str) -> Proc:
        return self._start(["worker"], data_dir, name)

    def submit(self, body: dict[str, Any]) -> str:
        reply = self.http.post("/ingest-async", json=body)
        assert reply.status_code == 202, reply.text
        return str(reply.json()["job_id"])

    def job(self, job_id: str, wait: float | None = None) -> dict[str, Any]:
        params = {"wait": wait} if wait else None
        reply = self.http.get(f"/jobs/{job_id}", params=params)
        assert reply.status_code == 200, reply.text
        result: dict[str, Any] = reply.json()
        return result

    def until(self, job_id: str, check: Any) -> dict[str, Any]:
        deadline = time.monotonic() + HANG
        job = self.job(job_id)
        while not check(job):
            if time.monotonic() > deadline:
                raise AssertionError(f"{job}\n" + "\n".join(p.log()[-3000:] for p in self.procs))
            job = self.job(job_id, wait=2)
        return job

    def close(self) -> None:
        self.http.close()
        for proc in self.procs:
            proc.stop()


@pytest.fixture
def cluster(tmp_path: Path, cluster_env: dict[str, str]) -> Iterator[Cluster]:
    c = Cluster(tmp_path, cluster_env)
    try:
        c.orchestrator()
        yield c
    finally:
        c.close()


def terminal(job: dict[str, Any]) -> bool:
    return job["status"] in {"succeeded", "failed", "cancelled"}


def stored_points(data_dir: Path, collection: str = "shield") -> list[dict[str, Any]]:
    """Every point's payload in a data dir's embedded store (read after its worker stopped)."""
    from qdrant_edge import EdgeShard, ScrollRequest

    path = data_dir / "collections" / collection
    if not (path / "edge_config.json").exists():
        return []
    shard = EdgeShard.load(str(path))
    out: list[dict[str, Any]] = []
    try:
        offset: Any = None
        while True:
            records, offset = shard.scroll(
                ScrollRequest(offset=offset, limit=256, with_payload=True, with_vector=False)
            )
            out.extend(dict(r.payload or {}) for r in records)
            if offset is None or not records:
                return out
    finally:
        shard.close()


def document_bodies(docs_dir: Path) -> list[dict[str, Any]]:
    files = write_all(docs_dir)
    return [{"kind": "document", "source": str(files[k])} for k in ("docx", "md", "html", "txt")]


def test_a_killed_worker_s_jobs_finish_on_the_next_worker_without_duplicates(
    cluster: Cluster, tmp_path: Path
) -> None:
    shared_dir = tmp_path / "worker-data"
    docs_dir = Path(cluster.env["SHIELD_INGEST_ROOTS"])
    with serve_site(pages=12, delay=0.3) as site:
        first = cluster.worker(shared_dir, "worker-1")
        crawl = cluster.submit({"kind": "crawl", "url": site.url, "max_pages": 12, "max_depth": 2})
        docs = [cluster.submit(body) for body in document_bodies(docs_dir)]
        # Mid-job: the crawl has stored pages and has more to go.
        cluster.until(crawl, lambda j: j["status"] == "running" and j["progress"]["done"] >= 2)
        first.kill()
        assert cluster.job(crawl)["status"] == "running"  # the store does not know yet
        second = cluster.worker(shared_dir, "worker-2")
        jobs = {job_id: cluster.until(job_id, terminal) for job_id in [crawl, *docs]}
        second.stop()

    assert all(j["status"] == "succeeded" for j in jobs.values()), jobs
    assert jobs[crawl]["attempts"] == 2, "the crawl ran again after its worker died"
    points = stored_points(shared_dir)
    assert points
    by_source: dict[str, list[str]] = {}
    for payload in points:
        by_source.setdefault(payload["metadata"]["source"], []).append(payload["document"])
    for source, texts in by_source.items():
        assert len(texts) == len(set(texts)), f"duplicated chunks for {source}"
    crawled = {s for s in by_source if s.startswith(site.url)}
    assert len(crawled) == jobs[crawl]["result"]["pages"]
    found_docs = " ".join(" ".join(t) for s, t in by_source.items() if not s.startswith("http"))
    for kind in ("docx", "md", "html", "txt"):
        assert PHRASES[kind] in found_docs


def test_two_live_workers_run_every_job_exactly_once(cluster: Cluster, tmp_path: Path) -> None:
    dirs = [tmp_path / "worker-a", tmp_path / "worker-b"]
    docs_dir = Path(cluster.env["SHIELD_INGEST_ROOTS"])
    workers = [cluster.worker(d, d.name) for d in dirs]
    bodies = document_bodies(docs_dir)
    for i in range(4):  # plain uploads, each with text of its own
        text = f"Upload number {i} tells of the {['red', 'blue', 'green', 'gold'][i]} kite."
        bodies.append(
            {
                "kind": "document",
                "content_base64": base64.b64encode(text.encode()).decode(),
                "filename": f"upload-{i}.txt",
            }
        )
    with serve_site(pages=6, delay=0.1) as site:
        bodies.append({"kind": "crawl", "url": site.url, "max_pages": 6, "max_depth": 2})
        ids = [cluster.submit(body) for body in bodies]
        jobs = {job_id: cluster.until(job_id, terminal) for job_id in ids}
    for worker in workers:
        assert worker.stop() == 0, worker.log()[-3000:]

    assert all(j["status"] == "succeeded" for j in jobs.values()), jobs
    assert all(j["attempts"] == 1 for j in jobs.values()), jobs
    owners: dict[str, set[str]] = {job_id: set() for job_id in ids}
    for data_dir in dirs:
        for payload in stored_points(data_dir):
            owners[payload["metadata"]["job_id"]].add(data_dir.name)
    assert all(len(where) == 1 for where in owners.values()), owners
