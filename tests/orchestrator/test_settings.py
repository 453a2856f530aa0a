"""The orchestrator's settings refuse job stores and queues its processes cannot share."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from orchestrator.settings import OrchestratorSettings

PG = "postgresql://postgres@127.0.0.1:5432/jobs"
REDIS = "redis://127.0.0.1:6379/0"


def test_a_queue_needs_a_shared_job_store(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        OrchestratorSettings(data_dir=tmp_path, queue_url=REDIS, database_url=None)
    (error,) = caught.value.errors()
    assert error["loc"] == ("queue_url",)
    assert "SHIELD_QUEUE_URL needs SHIELD_DATABASE_URL" in error["msg"]
    assert "postgresql://" in error["msg"] and "sqlite+aiosqlite:///" in error["msg"]


@pytest.mark.parametrize(
    "url", ["mysql://root@db/jobs", "http://127.0.0.1:5432/jobs", "jobs.sqlite3", "sqlite://"]
)
def test_an_unknown_database_url_is_refused_naming_the_accepted_forms(
    tmp_path: Path, url: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        OrchestratorSettings(data_dir=tmp_path, database_url=url)
    (error,) = caught.value.errors()
    assert error["loc"] == ("database_url",)
    for form in ("postgresql://", "postgres://", "postgresql+asyncpg://", "sqlite+aiosqlite:///"):
        assert form in error["msg"]


@pytest.mark.parametrize("url", ["amqp://127.0.0.1:5672", "127.0.0.1:6379", "http://redis:6379"])
def test_a_queue_url_must_be_redis(tmp_path: Path, url: str) -> None:
    with pytest.raises(ValidationError) as caught:
        OrchestratorSettings(data_dir=tmp_path, queue_url=url, database_url=PG)
    (error,) = caught.value.errors()
    assert error["loc"] == ("queue_url",)
    assert "redis://" in error["msg"] and "rediss://" in error["msg"]


@pytest.mark.parametrize(
    ("given", "driver_url"),
    [
        (PG, "postgresql+asyncpg://postgres@127.0.0.1:5432/jobs"),
        ("postgres://u@h/jobs", "postgresql+asyncpg://u@h/jobs"),
        ("postgresql+asyncpg://u@h/jobs", "postgresql+asyncpg://u@h/jobs"),
        ("sqlite:////srv/shield/jobs.sqlite3", "sqlite+aiosqlite:////srv/shield/jobs.sqlite3"),
        ("sqlite+aiosqlite:///jobs.sqlite3", "sqlite+aiosqlite:///jobs.sqlite3"),
    ],
)
def test_accepted_database_urls_get_an_async_driver(
    tmp_path: Path, given: str, driver_url: str
) -> None:
    settings = OrchestratorSettings(data_dir=tmp_path, database_url=given, queue_url=REDIS)
    assert settings.job_database_url == driver_url


@pytest.mark.parametrize("url", [REDIS, "rediss://cache.example:6380/0", "unix:///run/r.sock"])
def test_redis_queue_urls_are_accepted(tmp_path: Path, url: str) -> None:
    assert OrchestratorSettings(data_dir=tmp_path, queue_url=url, database_url=PG).queue_url == url


def test_without_a_queue_the_job_store_defaults_to_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    settings = OrchestratorSettings(data_dir=tmp_path)
    assert settings.job_database_url == f"sqlite+aiosqlite:///{tmp_path / 'jobs.sqlite3'}"
