"""The job table: one SQLAlchemy Core definition for SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

metadata = sa.MetaData()


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, whatever the database keeps.

    SQLite stores naive text (compared as strings, so every value must be UTC);
    PostgreSQL keeps ``timestamptz``.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("job timestamps must be timezone-aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            value = datetime.fromisoformat(str(value))
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


jobs = sa.Table(
    "shield_jobs",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    # The whole request, uploaded bytes included: only the worker reads it.
    sa.Column("request", sa.JSON, nullable=False),
    # What get/list show: uploaded content replaced by its size.
    sa.Column("public_request", sa.JSON, nullable=False),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("idempotency_key", sa.String(255), nullable=True, unique=True),
    sa.Column("progress", sa.JSON, nullable=False),
    sa.Column("result", sa.JSON, nullable=True),
    sa.Column("error", sa.JSON, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("cancel_requested", sa.Boolean, nullable=False, default=False),
    sa.Column("worker_id", sa.String(200), nullable=True),
    sa.Column("lease_expires_at", UTCDateTime, nullable=True),
    # When the queue last got a message for this job (to find messages the queue lost).
    sa.Column("enqueued_at", UTCDateTime, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=True),
    sa.Column("finished_at", UTCDateTime, nullable=True),
    sa.Index("ix_shield_jobs_status_created", "status", "created_at"),
    sa.Index("ix_shield_jobs_created", "created_at"),
)

# Everything get/list need; the full request (megabytes of base64) stays in the table.
PUBLIC_COLUMNS = (
    jobs.c.id,
    jobs.c.kind,
    jobs.c.status,
    jobs.c.public_request,
    jobs.c.progress,
    jobs.c.result,
    jobs.c.error,
    jobs.c.attempts,
    jobs.c.cancel_requested,
    jobs.c.created_at,
    jobs.c.updated_at,
    jobs.c.started_at,
    jobs.c.finished_at,
)
