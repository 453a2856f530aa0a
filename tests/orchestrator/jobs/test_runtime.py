"""The runtime's readiness, metrics and the entry points' refusals and start-up failures."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from pydantic import ValidationError

from knowledge.embeddings.local import LocalEmbedder
from orchestrator.main import worker_command
from orchestrator.settings import OrchestratorSettings
from orchestrator_client.models import JobStatus
from tests.orchestrator.jobs.conftest import SettingsFactory, running, text_request
from tests.support import SHIELD, closed_port, server_env


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
    make_settings: SettingsFactory, tmp_path: Path, dead_port: int
) -> None:
    # Nothing listens on this port: Redis is "down".
    settings = make_settings(
        queue_url=f"redis://127.0.0.1:{dead_port}/0",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'shared' / 'jobs.sqlite3'}",
    )
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
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIELD_DATA_DIR", str(tmp_path))  # and no SHIELD_QUEUE_URL
    assert await worker_command() == 2
    assert "SHIELD_QUEUE_URL" in capsys.readouterr().err
    with pytest.raises(ValidationError, match="SHIELD_QUEUE_URL needs SHIELD_DATABASE_URL"):
        OrchestratorSettings(
            data_dir=tmp_path, queue_url="redis://127.0.0.1:6379/0", database_url=None
        )


def _orchestrator(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """An orchestrator that must stop before it serves: its port is held here, so one that
    got as far as binding would fail on that instead (exit code 3, not 2)."""
    with closed_port() as port:
        return subprocess.run(
            [SHIELD, "orchestrator", "--host", "127.0.0.1", "--port", str(port)],
            env=server_env(tmp_path / "data", **env),
            capture_output=True,
            text=True,
            timeout=120,  # guards against a hang only
        )


@pytest.mark.slow  # an orchestrator process
def test_the_orchestrator_refuses_a_queue_without_a_shared_job_store(tmp_path: Path) -> None:
    done = _orchestrator(tmp_path, SHIELD_QUEUE_URL="redis://127.0.0.1:6379/0")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("shield-mcp: bad configuration: SHIELD_QUEUE_URL")
    assert "SHIELD_QUEUE_URL needs SHIELD_DATABASE_URL" in lines[0]


@pytest.mark.slow  # an orchestrator process
def test_an_unreachable_job_store_fails_start_up_in_one_line_without_its_password(
    tmp_path: Path, dead_port: int
) -> None:
    port = dead_port  # nothing listens here: the database is "down"
    password = "pw-d0-not-print"
    url = f"postgresql://shield:{password}@127.0.0.1:{port}/jobs"
    done = _orchestrator(tmp_path, SHIELD_DATABASE_URL=url)
    assert done.returncode == 2, done.stderr
    output = done.stdout + done.stderr
    assert "Traceback" not in output
    assert password not in output
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith("shield-mcp: cannot open the job store at ")
    assert f"postgresql://127.0.0.1:{port}/jobs" in line
    assert "SHIELD_DATABASE_URL" in line
