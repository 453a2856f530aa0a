"""The embedded default (`shield-mcp serve`: orchestrator, SQLite job store, queue and workers
in one process) SIGKILLed three times in a row while a crawl and document jobs run.

After each kill it is started again at once on the same data dir: the data-dir lock dies
with the process, so the new one starts (a stale lock would stop it, saying the directory
is in use), and it takes back the jobs of the dead one. At the end every job has succeeded
or failed with a message that fits what happened, and no chunk is stored twice.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.documents import write_all
from tests.orchestrator.test_distributed import stored_points
from tests.sites import serve_site
from tests.support import ServerProcess

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

HANG = 150.0  # guards against a hang only
KILLS = 3


def _get(server: ServerProcess, job_id: str, wait: float | None = None) -> dict[str, Any]:
    params = {"wait": wait} if wait else None
    reply = httpx.get(f"{server.url}/jobs/{job_id}", params=params, timeout=60)
    assert reply.status_code == 200, reply.text
    job: dict[str, Any] = reply.json()
    return job


def _until(server: ServerProcess, job_id: str, check: Any) -> dict[str, Any]:
    deadline = time.monotonic() + HANG
    job = _get(server, job_id)
    while not check(job):
        if time.monotonic() > deadline:
            raise AssertionError(f"{job}\n{server.log()[-4000:]}")
        job = _get(server, job_id, wait=2)
    return job


def test_three_sigkills_in_a_row_restart_at_once_and_leave_no_duplicates(
    tmp_path: Path, data_dir: Path, docs_dir: Path
) -> None:
    env = {
        "SHIELD_INGEST_ROOTS": str(docs_dir),
        "SHIELD_CRAWL_ALLOW_PRIVATE": "true",  # the test site runs on 127.0.0.1
        "SHIELD_LOG_LEVEL": "INFO",
    }
    files = write_all(docs_dir)
    restarts: list[tuple[float, float]] = []  # (to /health, to the job API) per restart

    def start(n: int) -> ServerProcess:
        began = time.monotonic()
        server = ServerProcess(data_dir, tmp_path / f"server-{n}.log", **env)
        server.wait_ready(timeout=60)  # exits at once, saying why, if the data dir is locked
        healthy = time.monotonic() - began
        httpx.get(f"{server.url}/jobs", timeout=60).raise_for_status()
        restarts.append((healthy, time.monotonic() - began))
        return server

    def kill(server: ServerProcess) -> None:
        os.killpg(server.proc.pid, signal.SIGKILL)  # the docling child with it
        server.proc.wait()
        server.stop()  # closes its log

    with serve_site(pages=12, delay=0.5) as site:
        server = start(0)
        submit = f"{server.url}/ingest-async"
        crawl_body = {"kind": "crawl", "url": site.url, "max_pages": 12, "max_depth": 2}
        crawl = httpx.post(submit, json=crawl_body, timeout=30).json()["job_id"]
        docs = [
            httpx.post(
                submit, json={"kind": "document", "source": str(files[k])}, timeout=30
            ).json()["job_id"]
            for k in ("docx", "md", "html", "txt")
        ]
        for n in range(1, KILLS + 1):
            # Mid-crawl: this attempt has stored pages and has more to go.
            _until(
                server,
                crawl,
                lambda j, n=n: (
                    j["status"] == "running" and j["attempts"] == n and j["progress"]["done"] >= 1
                ),
            )
            kill(server)
            server = start(n)
        try:
            jobs = {
                j: _until(server, j, lambda job: job["status"] in {"succeeded", "failed"})
                for j in [crawl, *docs]
            }
        finally:
            server.stop()
    shown = [(round(a, 2), round(b, 2)) for a, b in restarts]
    print(f"start/restart to /health, to the job API (s): {shown}")

    crawl_job = jobs.pop(crawl)
    # Killed in each of its SHIELD_MAX_ATTEMPTS=3 attempts: failed, saying what happened.
    assert crawl_job["status"] == "failed", crawl_job
    assert crawl_job["error"]["code"] == "worker_lost", crawl_job
    message = crawl_job["error"]["message"]
    assert "crawl" in message and "3 time(s)" in message, message
    assert "document" not in message, message
    for job in jobs.values():
        assert job["status"] == "succeeded" or "document" in job["error"]["message"], job

    by_source: dict[str, list[str]] = {}
    for payload in stored_points(data_dir):
        by_source.setdefault(payload["metadata"]["source"], []).append(payload["document"])
    assert any(s.startswith(site.url) for s in by_source), "no page of the crawl was kept"
    for source, texts in by_source.items():
        assert len(texts) == len(set(texts)), f"duplicated chunks for {source}"
