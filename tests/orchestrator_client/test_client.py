"""The typed client over a real orchestrator: every call, and the errors callers act on."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from knowledge.breakers import Breaker
from knowledge.errors import DependencyRejected, InvalidInput
from orchestrator_client.client import OrchestratorClient
from orchestrator_client.errors import JobConflict, JobNotFound
from orchestrator_client.models import CrawlRequest, DocumentRequest, Job, JobStatus
from tests.orchestrator.http.conftest import SITE, TOKEN, Api, serving

HANG_GUARD_SECONDS = 60.0


def crawl(path: str = "start") -> CrawlRequest:
    return CrawlRequest(url=f"{SITE}/{path}", max_pages=2)


async def test_submit_get_list_and_cancel(idle_client: OrchestratorClient) -> None:
    accepted = await idle_client.submit(crawl())
    assert accepted.status is JobStatus.queued
    assert accepted.track_url == f"/jobs/{accepted.job_id}"
    assert accepted.events_url == f"/jobs/{accepted.job_id}/events"

    job = await idle_client.get_job(accepted.job_id)
    assert job.job_id == accepted.job_id
    assert job.request["url"] == f"{SITE}/start"

    page = await idle_client.list_jobs(status=JobStatus.queued, limit=5)
    assert [j.job_id for j in page.jobs] == [accepted.job_id]

    cancelled = await idle_client.cancel(accepted.job_id)
    assert cancelled.status is JobStatus.cancelled
    assert (await idle_client.list_jobs(status=JobStatus.queued)).jobs == []


async def test_idempotent_submit_returns_the_same_job(idle_client: OrchestratorClient) -> None:
    first = await idle_client.submit(crawl(), idempotency_key="same-work")
    again = await idle_client.submit(crawl(), idempotency_key="same-work")
    assert again.job_id == first.job_id
    with pytest.raises(JobConflict, match="same-work"):
        await idle_client.submit(crawl("other"), idempotency_key="same-work")


async def test_server_refusals_become_domain_errors_with_the_servers_message(
    idle_client: OrchestratorClient, breaker: Breaker, tmp_path: Path
) -> None:
    with pytest.raises(JobNotFound, match="No job"):
        await idle_client.get_job("00000000-0000-0000-0000-000000000000")
    outside = tmp_path / "outside.md"
    outside.write_text("# no\n")
    with pytest.raises(InvalidInput, match="SHIELD_INGEST_ROOTS"):
        await idle_client.submit(DocumentRequest(source=str(outside)))
    with pytest.raises(InvalidInput, match="wait"):
        await idle_client.get_job("00000000-0000-0000-0000-000000000000", wait=1000)
    accepted = await idle_client.submit(crawl())
    await idle_client.cancel(accepted.job_id)
    assert breaker.state == "closed"


async def test_long_poll_stretches_the_per_call_timeout(idle: Api, breaker: Breaker) -> None:
    # The client's own timeout is shorter than the wait: the call must not time out.
    async with OrchestratorClient(
        "http://o", timeout=0.2, breaker=breaker, transport=httpx.ASGITransport(app=idle.app)
    ) as client:
        accepted = await client.submit(crawl())
        job = await client.get_job(accepted.job_id, wait=1.0)
    assert job.status is JobStatus.queued
    assert breaker.state == "closed"


async def test_events_stream_over_a_real_server(idle: Api, breaker: Breaker) -> None:
    async with (
        serving(idle.app) as url,
        OrchestratorClient(url, breaker=breaker) as client,
    ):
        accepted = await client.submit(crawl())
        stream = client.events(accepted.job_id)
        first = await anext(stream)
        assert first.status is JobStatus.queued
        await client.cancel(accepted.job_id)
        later = [job async for job in _bounded(stream)]
    assert [job.status for job in later] == [JobStatus.cancelled]


async def _bounded(stream: AsyncIterator[Job]) -> AsyncIterator[Job]:
    async with asyncio.timeout(HANG_GUARD_SECONDS):
        async for item in stream:
            yield item


async def test_events_of_an_unknown_job_is_not_found(idle_client: OrchestratorClient) -> None:
    with pytest.raises(JobNotFound):
        async for _ in idle_client.events("00000000-0000-0000-0000-000000000000"):
            pass


async def test_ready_reports_components(idle_client: OrchestratorClient) -> None:
    report = await idle_client.ready()
    assert report["status"] == "ready"
    assert set(report["components"].values()) == {"ok"}


async def test_token_is_sent_and_a_wrong_one_says_what_to_check(
    guarded_url: str, breaker: Breaker
) -> None:
    async with OrchestratorClient(guarded_url, token=TOKEN, breaker=breaker) as client:
        accepted = await client.submit(crawl())
        assert (await client.get_job(accepted.job_id)).status is JobStatus.queued
    wrong = "not-the-token"
    async with OrchestratorClient(guarded_url, token=wrong, breaker=breaker) as client:
        for _ in range(7):  # more than the threshold: a refusal is no outage
            with pytest.raises(DependencyRejected) as caught:
                await client.list_jobs()
    assert "SHIELD_ORCHESTRATOR_TOKEN" in str(caught.value)
    assert wrong not in str(caught.value)
    assert breaker.state == "closed"


async def test_client_refuses_a_blank_job_id_without_a_request(breaker: Breaker) -> None:
    # Nothing listens at this address: a request would fail differently.
    async with OrchestratorClient("http://127.0.0.1:9", breaker=breaker) as client:
        with pytest.raises(InvalidInput, match="job_id"):
            await client.get_job("  ")
    assert breaker.state == "closed"


def test_importing_the_client_stays_light() -> None:
    code = (
        "import sys, orchestrator_client.client\n"
        "heavy = [m for m in ('fastapi', 'sqlalchemy', 'taskiq', 'docling', 'crawl4ai', "
        "'starlette', 'uvicorn') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
