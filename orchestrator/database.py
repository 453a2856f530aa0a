"""Opening the orchestrator's SQL database (SQLite or PostgreSQL) with its tables made.

The job store and LightRAG's source registry share it: the same engine set-up, the same
SQLite pragmas, the same tolerance for another process creating the tables first.

A database that is down is a dependency outage, not a bug: ``GuardedEngine`` turns the
driver's connection failures into ``DatabaseUnavailable`` (a ``DependencyUnavailable`` with
``retry_after``), which the HTTP API answers with 503 and ``Retry-After``. PostgreSQL
connections give up after ``CONNECT_TIMEOUT`` seconds and statements after
``STATEMENT_TIMEOUT``, so a server that hangs cannot hold a request for ever.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from knowledge.errors import DependencyUnavailable
from knowledge.redact import safe_location

SQLITE_BUSY_TIMEOUT_MS = 10_000
CONNECT_TIMEOUT = 3.0  # seconds to open a PostgreSQL connection
STATEMENT_TIMEOUT = 30.0  # seconds for one statement: every query here is small
RETRY_AFTER = 5.0  # what a caller is told to wait while the database is down


class DatabaseUnavailable(DependencyUnavailable):
    """The database could not be reached, or dropped the connection mid-statement."""


@functools.cache
def _driver_outage_types() -> tuple[type[BaseException], ...]:
    try:
        from asyncpg import exceptions as pg
    except ImportError:  # SQLite only
        return ()
    return (
        pg.PostgresConnectionError,  # the server refused or dropped the session
        pg.OperatorInterventionError,  # starting up, shutting down, admin shutdown
        pg.InterfaceError,  # the client's connection is closed
        pg.TooManyConnectionsError,
    )


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the database is down or unreachable, rather
    than that a statement was wrong: those are worth a retry later, the others are bugs."""
    outage: tuple[type[BaseException], ...] = (OSError, TimeoutError, *_driver_outage_types())
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, outage):
            return True
        if isinstance(current, DBAPIError):
            if current.connection_invalidated or isinstance(current, sa.exc.InterfaceError):
                return True
            # SQLite: another process holds the write lock past the busy timeout.
            if "database is locked" in str(current.orig):
                return True
            current = current.orig
            continue
        current = current.__cause__ or current.__context__
    return False


class _GuardedConnection(AsyncConnection):
    """A connection of a ``GuardedEngine``: an outage while connecting, inside the ``async
    with`` block or at its commit is raised as ``DatabaseUnavailable``."""

    async def __aenter__(self) -> AsyncConnection:
        try:
            return await super().__aenter__()
        except Exception as exc:
            # Whatever stops a connection from opening (down, refusing connections, not
            # accepting this database or user) makes the database unusable for now: the
            # caller gets 503 and a message naming it, not an internal error.
            if isinstance(self.engine, GuardedEngine) and not isinstance(exc, DatabaseUnavailable):
                raise self.engine.unavailable(exc) from exc
            raise

    async def __aexit__(self, type_: Any, value: Any, traceback: Any) -> None:
        try:
            await super().__aexit__(type_, value, traceback)
        except Exception as exc:
            raise _translated(self.engine, exc) from exc
        if isinstance(value, Exception):
            translated = _translated(self.engine, value)
            if translated is not value:
                raise translated from value


def _translated(engine: AsyncEngine, exc: Exception) -> Exception:
    if isinstance(exc, DatabaseUnavailable) or not is_outage(exc):
        return exc
    if isinstance(engine, GuardedEngine):
        return engine.unavailable(exc)
    return exc


class GuardedEngine(AsyncEngine):
    """An engine whose connections raise ``DatabaseUnavailable`` (naming the database,
    without its password) when it is down, instead of the driver's errors. ``begin()``
    goes through ``connect()``, so both are covered."""

    _connection_cls = _GuardedConnection

    def __init__(self, engine: AsyncEngine, url: str, what: str) -> None:
        super().__init__(engine.sync_engine)
        self._where = safe_location(url)
        self._what = what

    def unavailable(self, exc: BaseException) -> DatabaseUnavailable:
        return DatabaseUnavailable(
            f"The {self._what} at {self._where} is unreachable ({type(exc).__name__}): it "
            f"cannot be read or written right now. Retry in {RETRY_AFTER:.0f} s; if this "
            "lasts, check that the database server is running and SHIELD_DATABASE_URL.",
            retry_after=RETRY_AFTER,
        )


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
        # A file has no server to go away: the ping would be a thread hop of aiosqlite's,
        # and several event-loop wake-ups, on every checkout (every accept) for nothing.
        kwargs["pool_pre_ping"] = False
    elif parsed.get_backend_name() == "postgresql":
        # asyncpg waits 60 s for a connection by default and for ever for an answer.
        kwargs["connect_args"] = {"timeout": CONNECT_TIMEOUT, "command_timeout": STATEMENT_TIMEOUT}
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
