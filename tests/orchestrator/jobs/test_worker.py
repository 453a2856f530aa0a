"""Workers on the in-process queue running the real pipeline (docling, crawl4ai, the local
model, the embedded store): outcomes, retries, cancellation, recovery and shutdown.

The docling child process takes seconds to start: the session's converter (tests/conftest.py)
serves these tests too.
"""

from __future__ import annotations

import asyncio
import base64
import threading
from pathlib import Path
from typing import Any

import pytest

from knowledge.embeddings.local import LocalEmbedder
from orchestrator.jobs.store import JobStore, NewJob
from orchestrator.pipeline.convert.converter import Converter
from orchestrator_client.models import (
    CrawlRequest,
    DocumentRequest,
    JobKind,
    JobStatus,
)
from tests.documents import PHRASES, write_docx, write_truncated_pdf
from tests.orchestrator.jobs.conftest import (
    SettingsFactory,
    dead_worker_id,
    running,
    text_request,
    until,
)
from tests.sites import serve_site
from tests.support import StubService

# Every job here runs the real pipeline, starting with a docling child of its own.
pytestmark = pytest.mark.slow


@pytest.fixture
def database_url() -> None:
    """SQLite only here: the store's SQL is tested on both databases in test_store.py."""
    return None


async def test_a_document_job_runs_to_success(
    make_settings: SettingsFactory,
    local_embedder: LocalEmbedder,
    converter: Converter,
    docs_dir: Path,
) -> None:
    path = write_docx(docs_dir / "notes.docx")
    settings = make_settings()
    async with running(settings, local_embedder, workers=True, converter=converter) as rt:
        job, _ = await rt.jobs.submit(DocumentRequest(source=str(path)))
        done = await until(rt.jobs, job.job_id)
        assert done.status is JobStatus.succeeded, done.error
        assert done.result is not None
        assert done.result.documents == 1 and done.result.chunks_stored >= 1
        assert done.result.converter == "docling:docx"
        assert done.attempts == 1 and done.progress.stage == "done"
        assert done.started_at is not None and done.finished_at is not None
        assert rt.service is not None
        found = await rt.service.find(PHRASES["docx"], limit=3)
        assert any(PHRASES["docx"] in hit.text for hit in found.results)

        again, _ = await rt.jobs.submit(DocumentRequest(source=str(path)))
        repeat = await until(rt.jobs, again.job_id)
        assert repeat.status is JobStatus.succeeded and repeat.result is not None
        assert repeat.result.chunks_skipped_unchanged == done.result.chunks_stored


async def test_a_bad_file_fails_its_own_job_and_the_next_job_succeeds(
    make_settings: SettingsFactory,
    local_embedder: LocalEmbedder,
    converter: Converter,
    docs_dir: Path,
) -> None:
    broken = write_truncated_pdf(docs_dir / "broken.pdf").read_bytes()
    async with running(make_settings(), local_embedder, workers=True, converter=converter) as rt:
        bad, _ = await rt.jobs.submit(
            DocumentRequest(content_base64=base64.b64encode(broken).decode(), filename="r.pdf")
        )
        good, _ = await rt.jobs.submit(text_request(PHRASES["txt"]))
        failed = await until(rt.jobs, bad.job_id)
        succeeded = await until(rt.jobs, good.job_id)
    assert failed.status is JobStatus.failed and failed.error is not None
    assert failed.error.code in {"conversion_failed", "invalid_input"}
    assert "r.pdf" in failed.error.message
    assert failed.attempts == 1  # not transient: no retry
    assert succeeded.status is JobStatus.succeeded, succeeded.error


def _flaky_ollama(failures: int | None) -> tuple[StubService, list[int]]:
    """An Ollama stand-in (none can run here) that answers 503 ``failures`` times first."""
    calls: list[int] = []

    def handler(method: str, path: str, body: Any) -> tuple[int, Any]:
        if method == "GET" and path == "/api/tags":
            # The runtime's dependency probe lists models; only embedding calls count here.
            return 200, {"models": [{"name": "nomic-embed-text"}]}
        calls.append(1)
        if failures is None or len(calls) <= failures:
            return 503, {"error": "model is loading"}
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        return 200, {
            "model": body["model"],
            "embeddings": [[1.0, float(len(t)), 0.5] for t in texts],
        }

    return StubService(handler), calls


@pytest.mark.parametrize(("failures", "outcome"), [(2, "succeeded"), (None, "failed")])
async def test_transient_failures_are_retried_up_to_max_attempts(
    make_settings: SettingsFactory, converter: Converter, failures: int | None, outcome: str
) -> None:
    stub, calls = _flaky_ollama(failures)
    with stub:
        settings = make_settings(
            embedder="ollama",
            ollama_host=stub.url,
            max_attempts=3,
            breaker_failure_threshold=100,  # keep the breaker out of this test
        )
        async with running(settings, workers=True, converter=converter) as rt:
            job, _ = await rt.jobs.submit(text_request("Retry until the model is loaded."))
            done = await until(rt.jobs, job.job_id)
    assert done.status is JobStatus(outcome)
    assert done.attempts == 3
    if outcome == "failed":
        assert done.error is not None and done.error.code == "dependency_unavailable"
        assert "gave up after 3 attempts" in done.error.message
        assert len(calls) >= 3
    else:
        assert done.result is not None and done.result.chunks_stored == 1


async def test_cancelling_a_running_crawl_stops_it(
    make_settings: SettingsFactory, local_embedder: LocalEmbedder, converter: Converter
) -> None:
    with serve_site(pages=40, delay=0.3) as site:
        async with running(
            make_settings(), local_embedder, workers=True, converter=converter
        ) as rt:
            job, _ = await rt.jobs.submit(CrawlRequest(url=site.url, max_pages=40, max_depth=3))
            await until(rt.jobs, job.job_id, lambda j: j.progress.done >= 1)
            asked = await rt.jobs.cancel(job.job_id)
            assert asked.cancel_requested
            done = await until(rt.jobs, job.job_id)
    assert done.status is JobStatus.cancelled
    assert done.result is None
    assert len(site.fetched_pages()) < 40


async def test_a_job_past_its_timeout_fails_with_code_timeout(
    make_settings: SettingsFactory, local_embedder: LocalEmbedder, converter: Converter
) -> None:
    with serve_site(pages=20, delay=1.0) as site:
        settings = make_settings(job_timeout=1.5)
        async with running(settings, local_embedder, workers=True, converter=converter) as rt:
            job, _ = await rt.jobs.submit(CrawlRequest(url=site.url, max_pages=20, max_depth=3))
            done = await until(rt.jobs, job.job_id)
    assert done.status is JobStatus.failed and done.error is not None
    assert done.error.code == "timeout"
    assert "SHIELD_JOB_TIMEOUT" in done.error.message


async def test_a_worker_runs_at_most_its_concurrency(
    make_settings: SettingsFactory, local_embedder: LocalEmbedder, converter: Converter
) -> None:
    with serve_site(pages=3, delay=0.2) as site:
        settings = make_settings(worker_concurrency=1)
        async with running(settings, local_embedder, workers=True, converter=converter) as rt:
            # Three requests that differ (identical ones would be one job).
            requests = [
                CrawlRequest(url=site.url, max_pages=3, max_depth=1, metadata={"run": str(i)})
                for i in range(3)
            ]
            ids = [(await rt.jobs.submit(request))[0].job_id for request in requests]
            most = 0
            while True:
                counts = await rt.jobs.counts()
                most = max(most, counts[JobStatus.running])
                if counts[JobStatus.succeeded] + counts[JobStatus.failed] == 3:
                    break
                await asyncio.sleep(0.05)
            jobs = [await rt.jobs.get(i) for i in ids]
    assert most == 1
    assert all(j.status is JobStatus.succeeded for j in jobs), [j.error for j in jobs]


async def test_jobs_of_a_dead_worker_are_recovered(
    make_settings: SettingsFactory, local_embedder: LocalEmbedder, converter: Converter
) -> None:
    settings = make_settings()
    # 1. A process died with a job running (its lease is still hours long): the next start
    #    of the in-process queue re-queues it at once.
    async with running(settings, workers=False) as idle:
        left, _ = await idle.jobs.submit(text_request("left running by a crash"))
        assert await idle.store.claim(left.job_id, dead_worker_id(), 3600) is not None
    # 2. A worker of another process (another JobStore on the same database) took a job
    #    and then went silent.
    other = JobStore(settings.job_database_url)
    await other.open()
    try:
        request = text_request("taken by a worker that then died")
        payload = request.model_dump(mode="json")
        job = await other.create(NewJob(JobKind.document, payload, payload, "h", None))
        assert await other.claim(job.job_id, "silent-worker", 3600) is not None

        async with running(settings, local_embedder, workers=True, converter=converter) as rt:
            restarted = await until(rt.jobs, left.job_id)
            assert restarted.status is JobStatus.succeeded, restarted.error
            assert restarted.attempts == 2

            # The silent worker may be alive (it is not provably dead), so its job is left
            # alone while its lease runs ...
            held = await rt.jobs.get(job.job_id)
            assert held.status is JobStatus.running and held.attempts == 1
            # ... and taken once the lease has run out. Its last renewal is moved into the
            # past here instead of waited for, so no test step races the lease.
            assert await other.heartbeat(job.job_id, "silent-worker", -1.0) is False
            recovered = await until(rt.jobs, job.job_id)
    finally:
        await other.close()
    assert recovered.status is JobStatus.succeeded, recovered.error
    assert recovered.attempts == 2


async def test_graceful_stop_finishes_running_jobs_within_the_grace(
    make_settings: SettingsFactory, local_embedder: LocalEmbedder, converter: Converter
) -> None:
    with serve_site(pages=4, delay=0.3) as site:
        settings = make_settings(shutdown_grace_seconds=60.0)
        async with running(settings, local_embedder, workers=True, converter=converter) as rt:
            job, _ = await rt.jobs.submit(CrawlRequest(url=site.url, max_pages=4, max_depth=2))
            await until(rt.jobs, job.job_id, lambda j: j.status is JobStatus.running)
        async with running(settings, workers=False) as after:
            done = await after.jobs.get(job.job_id)
    assert done.status is JobStatus.succeeded, done.error
    assert done.attempts == 1


async def test_graceful_stop_hands_back_jobs_that_outlast_the_grace(
    make_settings: SettingsFactory, local_embedder: LocalEmbedder, converter: Converter
) -> None:
    with serve_site(pages=10, delay=0.5) as site:
        settings = make_settings(shutdown_grace_seconds=0.5)
        async with running(settings, local_embedder, workers=True, converter=converter) as rt:
            job, _ = await rt.jobs.submit(CrawlRequest(url=site.url, max_pages=10, max_depth=2))
            await until(rt.jobs, job.job_id, lambda j: j.progress.stage == "crawling")
        async with running(settings, workers=False) as idle:
            handed_back = await idle.jobs.get(job.job_id)
            assert handed_back.status is JobStatus.queued
            assert handed_back.attempts == 0  # a shutdown is not the job's fault
        async with running(settings, local_embedder, workers=True, converter=converter) as rt:
            done = await until(rt.jobs, job.job_id)
    assert done.status is JobStatus.succeeded, done.error
    assert done.attempts == 1 and done.result is not None and done.result.pages >= 1


async def test_a_second_process_on_the_same_job_store_leaves_live_jobs_alone(
    make_settings: SettingsFactory,
    local_embedder: LocalEmbedder,
    converter: Converter,
    tmp_path: Path,
) -> None:
    # Two servers with the in-process queue sharing one job database (as two stdio servers
    # on one data dir with SHIELD_QDRANT_URL do); here one process, two runtimes.
    shared = f"sqlite+aiosqlite:///{tmp_path / 'shared' / 'jobs.sqlite3'}"
    first = make_settings(data_dir=tmp_path / "a", database_url=shared)
    second = make_settings(data_dir=tmp_path / "b", database_url=shared)
    # The site answers only once the second runtime has started: until then the crawl is
    # certainly still running, however slowly that start goes.
    second_started = threading.Event()
    with serve_site(pages=6, delay=0.3, hold=second_started) as site:
        try:
            async with running(first, local_embedder, workers=True, converter=converter) as a:
                job, _ = await a.jobs.submit(CrawlRequest(url=site.url, max_pages=6, max_depth=2))
                await until(a.jobs, job.job_id, lambda j: j.status is JobStatus.running)
                async with running(second, local_embedder, workers=True, converter=converter) as b:
                    assert (await b.jobs.get(job.job_id)).status is JobStatus.running
                    second_started.set()
                    done = await until(a.jobs, job.job_id)
        finally:
            second_started.set()
    assert done.status is JobStatus.succeeded, done.error
    assert done.attempts == 1, "the second process's start took the first one's running job"
