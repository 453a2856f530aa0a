"""The runtime's readiness, metrics and the worker entry point's refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from knowledge.embeddings.local import LocalEmbedder
from orchestrator.main import run_worker
from orchestrator.settings import OrchestratorSettings
from orchestrator_client.models import JobStatus
from tests.orchestrator.jobs.conftest import SettingsFactory, running, text_request
from tests.support import free_port


@pytest.fixture
def database_url() -> None:
    return None


async def test_ready_when_store_queue_vector_store_and_embedder_answer(
    make_settings: SettingsFactory, local_embedder: LocalEmbedder
) -> None:
    async with running(make_settings(), local_embedder, workers=True) as rt:
        assert await rt.readiness() == {
            "job_store": "ok",
            "queue": "ok",
            "vector_store": "ok",
            "embedder": "ok",
        }


async def test_redis_down_is_reported_and_jobs_are_still_accepted(
    make_settings: SettingsFactory,
) -> None:
    # Nothing listens on this port: Redis is "down".
    settings = make_settings(queue_url=f"redis://127.0.0.1:{free_port()}/0")
    async with running(settings, workers=False) as rt:
        ready = await rt.readiness()
        assert ready["job_store"] == "ok"
        assert "unreachable" in ready["queue"] and "SHIELD_QUEUE_URL" in ready["queue"]
        job, created = await rt.jobs.submit(text_request("kept until Redis is back"))
        assert created
        assert (await rt.jobs.get(job.job_id)).status is JobStatus.queued


async def test_job_metrics_follow_the_store(make_settings: SettingsFactory) -> None:
    cancelled = {"kind": "document", "status": "cancelled"}
    async with running(make_settings(), workers=False) as rt:
        ids = [(await rt.jobs.submit(text_request(t)))[0].job_id for t in ("a", "b", "c")]
        assert await rt.store.claim(ids[0], "w", 30) is not None
        before = REGISTRY.get_sample_value("jobs_total", cancelled) or 0
        await rt.jobs.cancel(ids[1])
        assert REGISTRY.get_sample_value("jobs_total", cancelled) == before + 1
        await rt.jobs.counts()
        assert REGISTRY.get_sample_value("worker_queue_size") == 1
        assert REGISTRY.get_sample_value("active_jobs") == 1


async def test_a_worker_needs_a_queue_and_a_shared_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    alone = OrchestratorSettings(data_dir=tmp_path, queue_url=None, database_url=None)
    assert await run_worker(alone) == 2
    assert "SHIELD_QUEUE_URL" in capsys.readouterr().err
    no_store = OrchestratorSettings(
        data_dir=tmp_path, queue_url="redis://127.0.0.1:6379/0", database_url=None
    )
    assert await run_worker(no_store) == 2
    assert "SHIELD_DATABASE_URL" in capsys.readouterr().err
