"""Job metrics after real jobs on the in-process queue: the stages each kind of job went
through, and why the failed ones failed. The service is wired as a worker wires it
(knowledge.wiring), so embedding and store time reach the stage clock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from orchestrator.pipeline.convert.converter import Converter
from orchestrator.runtime import OrchestratorRuntime
from orchestrator_client.models import CrawlRequest, DocumentRequest, JobStatus
from tests.documents import write_docx, write_truncated_pdf
from tests.orchestrator.jobs.conftest import SettingsFactory, running, text_request, until
from tests.sites import serve_site
from tests.support import StubService

pytestmark = pytest.mark.slow  # the real pipeline: docling, crawl4ai, the local model


@pytest.fixture
def database_url() -> None:
    """SQLite only: the store's SQL is tested on both databases elsewhere."""
    return None


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def stage_counts(kind: str) -> dict[str, float]:
    stages = ("fetch", "convert", "chunk", "embed", "upsert", "lightrag")
    return {
        stage: value("job_stage_duration_seconds_count", kind=kind, stage=stage) for stage in stages
    }


def failures(kind: str) -> dict[str, float]:
    reasons = ("invalid_input", "dependency", "timeout", "internal")
    return {reason: value("job_failures_total", kind=kind, reason=reason) for reason in reasons}


def moved(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {key: after[key] - before[key] for key in before if after[key] != before[key]}


async def run_one(rt: OrchestratorRuntime, request: Any) -> JobStatus:
    job, _ = await rt.jobs.submit(request)
    return (await until(rt.jobs, job.job_id)).status


async def test_a_document_job_times_each_stage_and_a_bad_one_is_the_input_s_fault(
    make_settings: SettingsFactory, converter: Converter, docs_dir: Path
) -> None:
    good = write_docx(docs_dir / "stages.docx")
    bad = write_truncated_pdf(docs_dir / "broken.pdf")
    async with running(make_settings(), workers=True, converter=converter) as rt:
        stages, failed = stage_counts("document"), failures("document")
        assert await run_one(rt, DocumentRequest(source=str(good))) is JobStatus.succeeded
        ran = moved(stages, stage_counts("document"))
        assert await run_one(rt, DocumentRequest(source=str(bad))) is JobStatus.failed
        graph = rt.graph is not None

    expected = {"fetch": 1.0, "convert": 1.0, "chunk": 1.0, "embed": 1.0, "upsert": 1.0}
    assert ran == ({**expected, "lightrag": 1.0} if graph else expected)
    assert moved(failed, failures("document")) == {"invalid_input": 1.0}


async def test_a_crawl_times_its_stages_once_per_attempt(
    make_settings: SettingsFactory, converter: Converter
) -> None:
    with serve_site(pages=3) as site:
        async with running(make_settings(), workers=True, converter=converter) as rt:
            before = stage_counts("crawl")
            request = CrawlRequest(url=site.url, max_pages=3, max_depth=1)
            assert await run_one(rt, request) is JobStatus.succeeded
            graph = rt.graph is not None
    expected = {"fetch": 1.0, "chunk": 1.0, "embed": 1.0, "upsert": 1.0}
    assert moved(before, stage_counts("crawl")) == (
        {**expected, "lightrag": 1.0} if graph else expected
    )


async def test_an_embedder_that_is_down_is_a_dependency_failure(
    make_settings: SettingsFactory, converter: Converter
) -> None:
    def down(_method: str, _path: str, _body: Any) -> tuple[int, Any]:
        return 503, {"error": "model is loading"}

    with StubService(down) as ollama:
        settings = make_settings(
            embedder="ollama", ollama_host=ollama.url, max_attempts=1, lightrag=False
        )
        async with running(settings, workers=True, converter=converter) as rt:
            before = failures("document")
            assert await run_one(rt, text_request("Nobody embeds me.")) is JobStatus.failed
    assert moved(before, failures("document")) == {"dependency": 1.0}
