"""A job store whose database cannot be used answers DatabaseUnavailable (HTTP 503 with
Retry-After), whatever stops the connection, not the driver's error (HTTP 500)."""

from __future__ import annotations

import uuid

import pytest

from orchestrator.database import DatabaseUnavailable
from orchestrator.jobs.store import JobStore
from tests.orchestrator.conftest import allow_connections


@pytest.mark.postgres
async def test_a_database_refusing_connections_is_unavailable_not_an_error(database: str) -> None:
    store = JobStore(f"postgresql+asyncpg://postgres:hunter2@127.0.0.1:5432/{database}")
    await store.open()
    try:
        await store.engine.dispose()  # no pooled session survives the change below
        allow_connections(database, False)
        with pytest.raises(DatabaseUnavailable) as caught:
            await store.get(str(uuid.uuid4()))
        message = str(caught.value)
        assert "job store" in message and database in message and "Retry in" in message
        assert "hunter2" not in message
        assert caught.value.retry_after is not None
        allow_connections(database, True)
        assert await store.get(str(uuid.uuid4())) is None  # back without a restart
    finally:
        await store.close()
