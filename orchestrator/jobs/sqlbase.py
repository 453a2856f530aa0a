"""The SQL plumbing under the job store: engine, dialect quirks, row mapping."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from orchestrator.jobs.schema import jobs, metadata
from orchestrator_client.models import (
    Job,
    JobError,
    JobKind,
    JobResult,
    JobStatus,
    Progress,
)

SQLITE_BUSY_TIMEOUT_MS = 10_000


def utcnow() -> datetime:
    return datetime.now(UTC)


def row_to_job(row: sa.Row[Any, *tuple[Any, ...]]) -> Job:
    m = row._mapping
    return Job(
        job_id=m["id"],
        kind=JobKind(m["kind"]),
        status=JobStatus(m["status"]),
        request=m["public_request"],
        progress=Progress.model_validate(m["progress"]),
        result=JobResult.model_validate(m["result"]) if m["result"] is not None else None,
        error=JobError.model_validate(m["error"]) if m["error"] is not None else None,
        attempts=m["attempts"],
        cancel_requested=bool(m["cancel_requested"]),
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        started_at=m["started_at"],
        finished_at=m["finished_at"],
    )


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets readers (GET /jobs) run while a worker writes; the busy timeout makes a
    # writer wait for the lock instead of failing at once.
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class SqlBase:
    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: AsyncEngine | None = None
        # Called after each write this process makes (JobService.wait wakes up at once).
        self.on_change: Callable[[str], None] | None = None

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("the job store is not open; call open() first")
        return self._engine

    async def open(self) -> None:
        if self._engine is not None:
            return
        url = make_url(self.url)
        kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if url.get_backend_name() == "sqlite":
            if url.database and url.database != ":memory:":
                Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        engine = create_async_engine(url, **kwargs)
        if url.get_backend_name() == "sqlite":
            sa.event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(metadata.create_all, checkfirst=True)
        except (IntegrityError, ProgrammingError) as exc:
            # Two processes creating the tables at once on PostgreSQL: the other one won
            # (a duplicate type, or "relation already exists", depending on the moment).
            if isinstance(exc, ProgrammingError) and "already exists" not in str(exc):
                await engine.dispose()
                raise
        except Exception:
            await engine.dispose()
            raise
        self._engine = engine

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(sa.select(sa.literal(1)))

    def _changed(self, job_id: str) -> None:
        if self.on_change is not None:
            self.on_change(job_id)

    async def _update(
        self, job_id: str, where: Sequence[sa.ColumnElement[bool]], **values: Any
    ) -> bool:
        values.setdefault("updated_at", utcnow())
        async with self.engine.begin() as conn:
            res = await conn.execute(
                sa.update(jobs).where(jobs.c.id == job_id, *where).values(**values)
            )
        changed = bool(res.rowcount)
        if changed:
            self._changed(job_id)
        return changed

    # -- the API's side ---------------------------------------------------------------
