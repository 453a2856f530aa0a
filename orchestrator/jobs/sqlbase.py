"""The SQL plumbing under the job store: engine, dialect quirks, row mapping."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from orchestrator.database import GuardedEngine, open_engine
from orchestrator.jobs.schema import jobs, metadata
from orchestrator_client.models import (
    Job,
    JobError,
    JobKind,
    JobResult,
    JobStatus,
    Progress,
)


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


class SqlBase:
    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: GuardedEngine | None = None
        # Called after each write this process makes (JobService.wait wakes up at once).
        self.on_change: Callable[[str], None] | None = None

    @property
    def engine(self) -> GuardedEngine:
        """Connections whose failures while the database is down raise DatabaseUnavailable
        (503 + Retry-After at the API; the workers wait and carry on)."""
        if self._engine is None:
            raise RuntimeError("the job store is not open; call open() first")
        return self._engine

    async def open(self) -> None:
        if self._engine is None:
            engine: AsyncEngine = await open_engine(self.url, metadata)
            self._engine = GuardedEngine(engine, self.url, "job store")

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
