"""Named locks that hold within a process and, given PostgreSQL, across processes.

Within a process: an asyncio lock per (event loop, namespace, name), kept only while some
task holds or awaits it. Across processes (workers sharing a PostgreSQL job store): a
session-level advisory lock keyed by the namespace and name, which PostgreSQL releases by
itself if the process dies, so a killed worker never leaves a lock behind.

The advisory lock is taken by polling ``pg_try_advisory_lock`` between committed
transactions, not by a blocking ``pg_advisory_lock``: a session blocked there sits in an
open transaction, and LightRAG's ``CREATE INDEX CONCURRENTLY`` (at first start) waits for
every open transaction, which would make the holder wait for the waiter.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

POLL_SECONDS = 0.1

_Key = tuple[asyncio.AbstractEventLoop, str, str]
# Process-wide, so that every SharedLocks of one namespace shares its local locks.
_local: weakref.WeakValueDictionary[_Key, asyncio.Lock] = weakref.WeakValueDictionary()

# Called once when the lock is not free at once (True: another process holds it), so the
# waiter can say why it does not move.
OnWait = Callable[[bool], Awaitable[None]]


def advisory_key(namespace: str, name: str) -> int:
    """A signed 64-bit key for pg_advisory_lock, stable across processes."""
    digest = hashlib.sha256(f"shield-mcp:{namespace}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def local_lock(namespace: str, name: str) -> asyncio.Lock:
    key = (asyncio.get_running_loop(), namespace, name)
    lock = _local.get(key)
    if lock is None:
        lock = asyncio.Lock()
        _local[key] = lock
    return lock


def held_names(namespace: str) -> list[str]:
    """Names of ``namespace`` with a local lock alive now (held or awaited)."""
    return [name for (_, space, name) in list(_local) if space == namespace]


class SharedLocks:
    def __init__(self, namespace: str, engine: AsyncEngine | None = None) -> None:
        self.namespace = namespace
        # Set: the PostgreSQL engine whose advisory locks serialise every process.
        self.engine = engine if engine is not None and engine.dialect.name == "postgresql" else None

    @contextlib.asynccontextmanager
    async def hold(self, name: str, *, on_wait: OnWait | None = None) -> AsyncIterator[None]:
        """The one holder of ``name`` in this process and, with PostgreSQL, in all."""
        lock = local_lock(self.namespace, name)
        waiting = _Waiting(on_wait)
        if lock.locked():
            await waiting.began(across_processes=False)
        async with lock, self._across_processes(advisory_key(self.namespace, name), waiting):
            yield

    @contextlib.asynccontextmanager
    async def _across_processes(self, key: int, waiting: _Waiting) -> AsyncIterator[None]:
        if self.engine is None:
            yield
            return
        async with self.engine.connect() as conn:
            while True:
                query = sa.text("SELECT pg_try_advisory_lock(:key)")
                taken = await conn.scalar(query, {"key": key})
                await conn.commit()  # wait outside any transaction (see the module's note)
                if taken:
                    break
                await waiting.began(across_processes=True)
                await asyncio.sleep(POLL_SECONDS)
            try:
                yield
            finally:
                try:
                    await asyncio.shield(_unlock(conn, key))
                except BaseException:
                    # The session may still hold the lock: never return it to the pool.
                    await conn.invalidate()
                    raise


class _Waiting:
    def __init__(self, on_wait: OnWait | None) -> None:
        self._on_wait = on_wait
        self._said = False

    async def began(self, *, across_processes: bool) -> None:
        if not self._said and self._on_wait is not None:
            self._said = True
            await self._on_wait(across_processes)


async def _unlock(conn: AsyncConnection, key: int) -> None:
    await conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
    await conn.commit()
