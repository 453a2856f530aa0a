"""One writer per LightRAG workspace, across processes.

LightRAG's locks are per process: two processes inserting into one workspace read the
same graph nodes, merge their own descriptions and write back, and the last write wins
(the other's entities and relations are lost). Inserts and deletes therefore hold a lock
per workspace: an asyncio lock within the process, and with the shared PostgreSQL storage
a session-level advisory lock keyed by the workspace, which PostgreSQL releases by itself
if the process dies. Opening LightRAG's PostgreSQL storages (it creates its tables without
a lock: two processes at once collide) takes one more such lock.

The locks are taken by polling ``pg_try_advisory_lock`` between committed transactions, not
by a blocking ``pg_advisory_lock``: a session blocked there sits in an open transaction,
and LightRAG's ``CREATE INDEX CONCURRENTLY`` (at first start) waits for every open
transaction, which would make the holder wait for the waiter.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import weakref
from collections.abc import AsyncIterator

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)
_Key = tuple[asyncio.AbstractEventLoop, str]
POLL_SECONDS = 0.1
SETUP = "\x00setup"  # not a collection name: the lock around opening the storages


def advisory_key(workspace: str) -> int:
    """A signed 64-bit key for pg_advisory_lock, stable across processes."""
    digest = hashlib.sha256(f"shield-mcp:lightrag:{workspace}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class WriterLocks:
    def __init__(self, engine: AsyncEngine | None = None) -> None:
        # Set: the PostgreSQL engine whose advisory locks serialise writers of all processes.
        self._engine = engine
        self._local: weakref.WeakValueDictionary[_Key, asyncio.Lock] = weakref.WeakValueDictionary()

    def _lock(self, workspace: str) -> asyncio.Lock:
        key = (asyncio.get_running_loop(), workspace)
        lock = self._local.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._local[key] = lock
        return lock

    @contextlib.asynccontextmanager
    async def hold(self, workspace: str) -> AsyncIterator[None]:
        """The one writer of ``workspace`` (in this process, and across processes)."""
        key = advisory_key(workspace)
        async with self._lock(workspace), self._across_processes(key, f"workspace {workspace!r}"):
            yield

    @contextlib.asynccontextmanager
    async def setup(self) -> AsyncIterator[None]:
        """Held while a process opens LightRAG's storages (their tables, at first start)."""
        key = advisory_key(SETUP)
        async with self._lock(SETUP), self._across_processes(key, "storage set-up"):
            yield

    @contextlib.asynccontextmanager
    async def _across_processes(self, key: int, what: str) -> AsyncIterator[None]:
        if self._engine is None:
            yield
            return
        async with self._engine.connect() as conn:
            waited = False
            while True:
                query = sa.text("SELECT pg_try_advisory_lock(:key)")
                taken = await conn.scalar(query, {"key": key})
                await conn.commit()  # wait outside any transaction (see the module's note)
                if taken:
                    break
                if not waited:
                    waited = True
                    log.info("LightRAG %s: another process is writing it; waiting", what)
                await asyncio.sleep(POLL_SECONDS)
            try:
                yield
            finally:
                try:
                    await asyncio.shield(self._unlock(conn, key))
                except BaseException:
                    # The session may still hold the lock: never return it to the pool.
                    await conn.invalidate()
                    raise

    @staticmethod
    async def _unlock(conn: AsyncConnection, key: int) -> None:
        await conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
        await conn.commit()
