"""A job store whose database cannot be used answers DatabaseUnavailable (HTTP 503 with
Retry-After), whatever stops the connection, not the driver's error (HTTP 500)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from orchestrator.database import DatabaseUnavailable
from orchestrator.jobs.store import JobStore
from tests.orchestrator.jobs.conftest import psql as _psql


@pytest.fixture
def database() -> Iterator[str]:
    name = f"shield_db_{uuid.uuid4().hex[:10]}"
    _psql(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        _psql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        _psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.postgres
async def test_a_database_refusing_connections_is_unavailable_not_an_error(database: str) -> None:
    store = JobStore(f"postgresql+asyncpg://postgres:hunter2@127.0.0.1:5432/{database}")
    await store.open()
    try:
        await store.engine.dispose()  # no pooled session survives the change below
        _psql(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        with pytest.raises(DatabaseUnavailable) as caught:
            await store.get(str(uuid.uuid4()))
        message = str(caught.value)
        assert "job store" in message and database in message and "Retry in" in message
        assert "hunter2" not in message
        assert caught.value.retry_after is not None
        _psql(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        assert await store.get(str(uuid.uuid4())) is None  # back without a restart
    finally:
        await store.close()
