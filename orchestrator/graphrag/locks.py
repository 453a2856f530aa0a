"""One writer per LightRAG workspace, across processes.

LightRAG's locks are per process: two processes inserting into one workspace read the
same graph nodes, merge their own descriptions and write back, and the last write wins
(the other's entities and relations are lost). Inserts and deletes therefore hold a lock
per workspace: an asyncio lock within the process, and with the shared PostgreSQL storage
a session-level advisory lock keyed by the workspace, which PostgreSQL releases by itself
if the process dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import weakref
from collections.abc import AsyncIterator

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

_Key = tuple[asyncio.AbstractEventLoop, str]


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
        async with self._lock(workspace):
            if self._engine is None:
                yield
                return
            key = advisory_key(workspace)
            async with self._engine.connect() as conn:
                await conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": key})
                await conn.commit()
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
