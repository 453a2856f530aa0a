"""The job store: every job's state in SQL (SQLite by default, PostgreSQL when shared).

It is the source of truth; queue messages carry only a job id. Every state change is a
compare-and-set (``UPDATE ... WHERE status = ...``) so that a job runs once among live
workers even when the queue delivers its message twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from orchestrator.jobs.schema import PUBLIC_COLUMNS, jobs
from orchestrator.jobs.sqlbase import SqlBase, row_to_job, utcnow
from orchestrator_client.models import (
    Job,
    JobError,
    JobKind,
    JobResult,
    JobStatus,
    Progress,
    is_job_id,
)


@dataclass(frozen=True)
class ClaimedJob:
    """What a worker gets when it wins a job: the full request and which attempt this is."""

    job_id: str
    kind: JobKind
    request: dict[str, Any]
    attempts: int


@dataclass(frozen=True)
class NewJob:
    kind: JobKind
    request: dict[str, Any]
    public_request: dict[str, Any]
    request_hash: str
    idempotency_key: str | None


class DuplicateKey(Exception):
    """The Idempotency-Key is taken; ``existing`` is that job, ``request_hash`` its hash."""

    def __init__(self, existing: Job, request_hash: str) -> None:
        super().__init__(existing.job_id)
        self.existing = existing
        self.request_hash = request_hash


class JobStore(SqlBase):
    """Every query the service, the workers and the sweeper make."""

    async def create(self, new: NewJob) -> Job:
        """Insert a queued job; raises DuplicateKey when its idempotency key is taken."""
        now = utcnow()
        job_id = str(uuid.uuid4())
        row: dict[str, Any] = {
            "id": job_id,
            "kind": new.kind.value,
            "status": JobStatus.queued.value,
            "request": new.request,
            "public_request": new.public_request,
            "request_hash": new.request_hash,
            "idempotency_key": new.idempotency_key,
            "progress": Progress().model_dump(),
            "attempts": 0,
            "cancel_requested": False,
            "enqueued_at": now,
            "created_at": now,
            "updated_at": now,
        }
        try:
            async with self.engine.begin() as conn:
                await conn.execute(sa.insert(jobs).values(**row))
        except IntegrityError:
            if new.idempotency_key is None:
                raise
            found = await self.by_key(new.idempotency_key)
            if found is None:  # deleted in between: cannot happen, jobs are never deleted
                raise
            raise DuplicateKey(*found) from None
        self._changed(job_id)
        # Built from what was written: the accept path saves a round trip.
        return Job(
            job_id=job_id,
            kind=new.kind,
            status=JobStatus.queued,
            request=new.public_request,
            progress=Progress(),
            created_at=now,
            updated_at=now,
        )

    async def by_key(self, key: str) -> tuple[Job, str] | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(*PUBLIC_COLUMNS, jobs.c.request_hash).where(
                        jobs.c.idempotency_key == key
                    )
                )
            ).first()
        return None if row is None else (row_to_job(row), row._mapping["request_hash"])

    async def active_twin(self, kind: JobKind, request_hash: str) -> Job | None:
        """The oldest queued or running job (not being cancelled) made from the same request."""
        query = (
            sa.select(*PUBLIC_COLUMNS)
            .where(
                # The (status, created_at) index narrows this to the few live jobs.
                jobs.c.status.in_([JobStatus.queued.value, JobStatus.running.value]),
                jobs.c.kind == kind.value,
                jobs.c.request_hash == request_hash,
                jobs.c.cancel_requested.is_(False),
            )
            .order_by(jobs.c.created_at, jobs.c.id)
            .limit(1)
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else row_to_job(row)

    async def get(self, job_id: str) -> Job | None:
        if not is_job_id(job_id):
            return None
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(sa.select(*PUBLIC_COLUMNS).where(jobs.c.id == job_id))
            ).first()
        return None if row is None else row_to_job(row)

    async def list_jobs(self, *, status: JobStatus | None, limit: int, offset: int) -> list[Job]:
        query = sa.select(*PUBLIC_COLUMNS).order_by(jobs.c.created_at.desc(), jobs.c.id.desc())
        if status is not None:
            query = query.where(jobs.c.status == status.value)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query.limit(limit).offset(offset))).all()
        return [row_to_job(r) for r in rows]

    async def counts(self) -> dict[JobStatus, int]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(jobs.c.status, sa.func.count()).group_by(jobs.c.status)
                )
            ).all()
        out = dict.fromkeys(JobStatus, 0)
        for status, count in rows:
            out[JobStatus(status)] = int(count)
        return out

    async def oldest_queued_since(self) -> datetime | None:
        """When the longest-waiting queued job entered the queue; None if none waits.

        ``updated_at`` of a queued job is that moment: accepting, handing back (release)
        and re-queueing (requeue_lost) set it, and nothing else writes a queued job.
        """
        async with self.engine.connect() as conn:
            since: datetime | None = (
                await conn.execute(
                    sa.select(sa.func.min(jobs.c.updated_at)).where(
                        jobs.c.status == JobStatus.queued.value
                    )
                )
            ).scalar()
        return since

    async def cancel_queued(self, job_id: str) -> bool:
        now = utcnow()
        return await self._update(
            job_id,
            [jobs.c.status == JobStatus.queued.value],
            status=JobStatus.cancelled.value,
            cancel_requested=True,
            finished_at=now,
            updated_at=now,
            error=JobError(code="cancelled", message="Cancelled before it started.").model_dump(),
        )

    async def request_cancel(self, job_id: str) -> bool:
        return await self._update(
            job_id,
            [jobs.c.status == JobStatus.running.value, jobs.c.cancel_requested.is_(False)],
            cancel_requested=True,
        )

    # -- the worker's side --------------------------------------------------------------

    async def claim(self, job_id: str, worker_id: str, lease_seconds: float) -> ClaimedJob | None:
        """Take a queued job for this worker; None when it is not queued (any more)."""
        if not is_job_id(job_id):
            return None
        now = utcnow()
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    sa.update(jobs)
                    .where(
                        jobs.c.id == job_id,
                        jobs.c.status == JobStatus.queued.value,
                        jobs.c.cancel_requested.is_(False),
                    )
                    .values(
                        status=JobStatus.running.value,
                        attempts=jobs.c.attempts + 1,
                        worker_id=worker_id,
                        lease_expires_at=now + timedelta(seconds=lease_seconds),
                        started_at=sa.func.coalesce(jobs.c.started_at, now),
                        updated_at=now,
                        progress=Progress(stage="starting").model_dump(),
                    )
                    .returning(jobs.c.kind, jobs.c.request, jobs.c.attempts)
                )
            ).first()
        if row is None:
            return None
        self._changed(job_id)
        return ClaimedJob(job_id, JobKind(row.kind), row.request, int(row.attempts))

    def _mine(self, worker_id: str) -> list[sa.ColumnElement[bool]]:
        return [jobs.c.status == JobStatus.running.value, jobs.c.worker_id == worker_id]

    async def heartbeat(self, job_id: str, worker_id: str, lease_seconds: float) -> bool | None:
        """Extend the lease; returns cancel_requested, or None when the job is not ours."""
        now = utcnow()
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    sa.update(jobs)
                    .where(jobs.c.id == job_id, *self._mine(worker_id))
                    .values(lease_expires_at=now + timedelta(seconds=lease_seconds))
                    .returning(jobs.c.cancel_requested)
                )
            ).first()
        return None if row is None else bool(row.cancel_requested)

    async def is_cancel_requested(self, job_id: str) -> bool:
        async with self.engine.connect() as conn:
            value = await conn.scalar(sa.select(jobs.c.cancel_requested).where(jobs.c.id == job_id))
        return bool(value)

    async def set_progress(self, job_id: str, worker_id: str, progress: Progress) -> bool:
        return await self._update(job_id, self._mine(worker_id), progress=progress.model_dump())

    async def next_attempt(self, job_id: str, worker_id: str) -> bool:
        return await self._update(job_id, self._mine(worker_id), attempts=jobs.c.attempts + 1)

    async def finish(
        self,
        job_id: str,
        worker_id: str,
        status: JobStatus,
        *,
        result: JobResult | None = None,
        error: JobError | None = None,
        progress: Progress | None = None,
    ) -> bool:
        now = utcnow()
        values: dict[str, Any] = {
            "status": status.value,
            "result": result.model_dump(mode="json") if result else None,
            "error": error.model_dump() if error else None,
            "finished_at": now,
            "updated_at": now,
            "lease_expires_at": None,
        }
        if progress is not None:
            values["progress"] = progress.model_dump()
        return await self._update(job_id, self._mine(worker_id), **values)

    async def release(self, job_id: str, worker_id: str) -> bool:
        """Give a job back to the queue (worker shutting down): this attempt does not count."""
        return await self._update(
            job_id,
            self._mine(worker_id),
            status=JobStatus.queued.value,
            worker_id=None,
            lease_expires_at=None,
            attempts=sa.case((jobs.c.attempts > 0, jobs.c.attempts - 1), else_=0),
            enqueued_at=utcnow(),
            progress=Progress(stage="queued").model_dump(),
        )

    # -- recovery -----------------------------------------------------------------------

    async def expired_leases(self, *, except_worker: str | None = None) -> list[tuple[str, int]]:
        query = sa.select(jobs.c.id, jobs.c.attempts).where(
            jobs.c.status == JobStatus.running.value, jobs.c.lease_expires_at < utcnow()
        )
        if except_worker is not None:
            query = query.where(jobs.c.worker_id != except_worker)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [(r.id, int(r.attempts)) for r in rows]

    async def running_workers(self) -> list[tuple[str, int, str | None]]:
        """(job id, attempts, worker id) of every running job."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                sa.select(jobs.c.id, jobs.c.attempts, jobs.c.worker_id).where(
                    jobs.c.status == JobStatus.running.value
                )
            )
            return [(r.id, int(r.attempts), r.worker_id) for r in rows]

    async def requeue_lost(
        self, job_id: str, attempts: int, max_attempts: int, error: JobError
    ) -> JobStatus | None:
        """A running job whose worker is gone: back to queued, or failed with ``error``
        after max_attempts (the sweeper words it for the job's kind).

        ``attempts`` is what the caller read: the update only applies if nothing moved since.
        """
        where = [jobs.c.status == JobStatus.running.value, jobs.c.attempts == attempts]
        now = utcnow()
        if attempts >= max_attempts:
            done = await self._update(
                job_id,
                where,
                status=JobStatus.failed.value,
                error=error.model_dump(),
                finished_at=now,
                lease_expires_at=None,
                updated_at=now,
            )
            return JobStatus.failed if done else None
        done = await self._update(
            job_id,
            where,
            status=JobStatus.queued.value,
            worker_id=None,
            lease_expires_at=None,
            enqueued_at=now,
            progress=Progress(stage="queued").model_dump(),
            updated_at=now,
        )
        return JobStatus.queued if done else None

    async def cancel_lost(self, job_id: str) -> bool:
        """A lost job someone asked to cancel: no need to run it again."""
        now = utcnow()
        return await self._update(
            job_id,
            [jobs.c.status == JobStatus.running.value, jobs.c.cancel_requested.is_(True)],
            status=JobStatus.cancelled.value,
            finished_at=now,
            lease_expires_at=None,
            updated_at=now,
        )

    async def stale_queued(self, enqueued_before: datetime) -> list[str]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                sa.select(jobs.c.id)
                .where(
                    jobs.c.status == JobStatus.queued.value,
                    sa.or_(jobs.c.enqueued_at.is_(None), jobs.c.enqueued_at < enqueued_before),
                )
                .order_by(jobs.c.created_at)
            )
            return [r.id for r in rows]

    async def mark_enqueued(self, job_ids: Sequence[str]) -> None:
        if not job_ids:
            return
        async with self.engine.begin() as conn:
            await conn.execute(
                sa.update(jobs)
                .where(jobs.c.id.in_(list(job_ids)), jobs.c.status == JobStatus.queued.value)
                .values(enqueued_at=utcnow())
            )


__all__ = ["ClaimedJob", "DuplicateKey", "JobStore", "NewJob", "is_job_id", "utcnow"]
