"""Redis and PostgreSQL killed for 20 s in the middle of a run of jobs.

A real `shield-mcp orchestrator` and `shield-mcp worker` on private Redis and PostgreSQL
servers (services.py), killed with SIGKILL and started again on the same port and data.
A crawl of a local site is held mid-job through the outage (the site answers no request
until the test lets it), so a job is running and others wait in the queue when it starts.

Redis down: the accept path stores the job first, so it answers 202 at once and the job
runs when Redis is back (decided by measurement: docs/RELIABILITY.md). PostgreSQL down:
nothing can be stored or read, so accepts and reads answer 503 with Retry-After, and
through MCP a tool error saying when to retry.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
from fastmcp import Client

from tests.mcp_server.servers import shield_server
from tests.orchestrator.faults.cluster import FaultCluster, outage, upload
from tests.orchestrator.faults.services import PostgresServer, RedisServer
from tests.sites import serve_site

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

OUTAGE = 20.0


@pytest.fixture
async def cluster(
    tmp_path: Path, private_redis: RedisServer, private_postgres: PostgresServer
) -> AsyncIterator[FaultCluster]:
    c = FaultCluster(tmp_path, private_redis, private_postgres)
    try:
        c.start()
        yield c
    finally:
        await c.aclose()
        # The next test starts from servers that run, whatever this one left.
        private_redis.start()
        private_postgres.start()


def texts(tag: str, n: int) -> list[dict[str, object]]:
    return [
        upload(
            f"Note {tag}-{i}: the {tag} ledger line {i} says the {i}th crate is blue.",
            f"{tag}-{i}.txt",
        )
        for i in range(n)
    ]


def assert_no_duplicates(cluster: FaultCluster) -> dict[str, list[str]]:
    by_source = cluster.points_by_source()
    assert by_source, "nothing was stored"
    for source, stored in by_source.items():
        assert len(stored) == len(set(stored)), f"duplicated chunks for {source}"
    return by_source


async def test_redis_killed_for_20_s_accepts_stay_202_and_every_job_runs_once_after(
    cluster: FaultCluster, private_redis: RedisServer
) -> None:
    hold = threading.Event()
    with serve_site(pages=6, hold=hold) as site:
        crawl = await cluster.submit({"kind": "crawl", "url": site.url, "max_pages": 6})
        before = [await cluster.submit(body) for body in texts("before", 3)]
        await cluster.until(crawl, lambda j: j["status"] == "running")

        private_redis.kill()
        down_at = time.monotonic()
        latencies = []
        during = []
        for body in texts("during", 3):
            started = time.monotonic()
            during.append(await cluster.submit(body))  # 202: stored, queued when Redis is back
            latencies.append(time.monotonic() - started)
        print(f"accepts with Redis down took {[round(s, 3) for s in latencies]} s")
        await outage(OUTAGE - (time.monotonic() - down_at))
        assert cluster.alive(), cluster.logs()
        private_redis.start()
        back = datetime.now().astimezone()
        hold.set()
        jobs = await cluster.all_ended([crawl, *before, *during])
    assert cluster.stop_worker() == 0, cluster.logs()

    assert all(j["status"] == "succeeded" for j in jobs.values()), jobs
    # Exactly once: a second run would have claimed the job again (attempts counts claims).
    assert all(j["attempts"] == 1 for j in jobs.values()), jobs
    for job_id in during:  # accepted while Redis was down, run once it was back
        assert datetime.fromisoformat(jobs[job_id]["started_at"]) >= back, jobs[job_id]
    by_source = assert_no_duplicates(cluster)
    crawled = {s for s in by_source if s.startswith(site.url)}
    assert len(crawled) == jobs[crawl]["result"]["pages"]
    uploads = {s for s in by_source if s.startswith("upload:")}
    assert len(uploads) == 6, sorted(by_source)


async def test_postgres_killed_for_20_s_answers_503_with_retry_after_then_jobs_finish(
    cluster: FaultCluster, private_postgres: PostgresServer, data_dir: Path
) -> None:
    hold = threading.Event()
    mcp = Client(shield_server(data_dir=data_dir, orchestrator_url=cluster.url))
    with serve_site(pages=6, hold=hold) as site:
        crawl = await cluster.submit({"kind": "crawl", "url": site.url, "max_pages": 6})
        before = [await cluster.submit(body) for body in texts("before", 3)]
        await cluster.until(crawl, lambda j: j["status"] == "running")

        private_postgres.kill()
        down_at = time.monotonic()
        started = time.monotonic()
        accept = await cluster.http.post("/ingest-async", json=texts("during", 1)[0])
        accept_seconds = time.monotonic() - started
        read = await cluster.http.get(f"/jobs/{crawl}")
        print(
            f"accept with PostgreSQL down answered {accept.status_code} in {accept_seconds:.3f} s"
        )
        assert accept.status_code == 503, accept.text
        assert read.status_code == 503, read.text
        for reply in (accept, read):
            assert int(reply.headers["retry-after"]) >= 1
            message = reply.json()["error"]["message"]
            assert "job store" in message and "Retry in" in message, message
        async with mcp:
            ingest = await mcp.call_tool(
                "ingest_doc",
                {"content_base64": texts("mcp", 1)[0]["content_base64"], "filename": "m.txt"},
                raise_on_error=False,
            )
            status = await mcp.call_tool("get_job_status", {"job_id": crawl}, raise_on_error=False)
            # qdrant_store/find do not depend on the orchestrator or its job store.
            stored = await mcp.call_tool("qdrant_store", {"text": "Kept while PostgreSQL is down."})
        for result in (ingest, status):
            assert result.is_error, result
            text = result.content[0].text  # type: ignore[union-attr]
            assert "job store" in text and "Retry in" in text, text
        assert not stored.is_error, stored

        await outage(OUTAGE - (time.monotonic() - down_at))
        assert cluster.alive(), cluster.logs()
        private_postgres.start()
        hold.set()
        jobs = await cluster.all_ended([crawl, *before])
    assert cluster.stop_worker() == 0, cluster.logs()

    assert all(j["status"] == "succeeded" for j in jobs.values()), jobs
    # A job that met the outage in a step needing the database (a source lock) was retried
    # after it, as a transient failure; none was lost or given up.
    print(f"attempts after the PostgreSQL outage: {[j['attempts'] for j in jobs.values()]}")
    by_source = assert_no_duplicates(cluster)
    crawled = {s for s in by_source if s.startswith(site.url)}
    assert len(crawled) == jobs[crawl]["result"]["pages"]
