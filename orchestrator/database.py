"""Opening the orchestrator's SQL database (SQLite or PostgreSQL) with its tables made.

The job store and LightRAG's source registry share it: the same engine set-up, the same
SQLite pragmas, the same tolerance for another process creating the tables first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

SQLITE_BUSY_TIMEOUT_MS = 10_000


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets readers (GET /jobs) run while a worker writes; the busy timeout makes a
    # writer wait for the lock instead of failing at once.
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


async def open_engine(url: str, metadata: sa.MetaData) -> AsyncEngine:
    """An engine on ``url`` whose ``metadata`` tables exist; disposed if that fails."""
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    engine = create_async_engine(parsed, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        sa.event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all, checkfirst=True)
    except (IntegrityError, ProgrammingError) as exc:
        # Two processes creating the tables at once on PostgreSQL: the other one won (a
        # duplicate type, or "relation already exists", depending on the moment).
        if isinstance(exc, ProgrammingError) and "already exists" not in str(exc):
            await engine.dispose()
            raise
    except BaseException:
        await engine.dispose()
        raise
    return engine
