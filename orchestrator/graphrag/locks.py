"""One writer per LightRAG workspace, across processes.

LightRAG's locks are per process: two processes inserting into one workspace read the
same graph nodes, merge their own descriptions and write back, and the last write wins
(the other's entities and relations are lost). Inserts and deletes therefore hold a lock
per workspace: within the process, and with the shared PostgreSQL storage an advisory lock
(``orchestrator/shared_locks.py``). Opening LightRAG's PostgreSQL storages (it creates its
tables without a lock: two processes at once collide) takes one more such lock.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncEngine

from orchestrator.shared_locks import OnWait, SharedLocks

log = logging.getLogger(__name__)
SETUP = "\x00setup"  # not a collection name: the lock around opening the storages


class WriterLocks:
    def __init__(self, engine: AsyncEngine | None = None) -> None:
        self._locks = SharedLocks("lightrag", engine)

    @contextlib.asynccontextmanager
    async def hold(self, workspace: str) -> AsyncIterator[None]:
        """The one writer of ``workspace`` (in this process, and across processes)."""
        async with self._locks.hold(workspace, on_wait=_say(f"workspace {workspace!r}")):
            yield

    @contextlib.asynccontextmanager
    async def setup(self) -> AsyncIterator[None]:
        """Held while a process opens LightRAG's storages (their tables, at first start)."""
        async with self._locks.hold(SETUP, on_wait=_say("storage set-up")):
            yield


def _say(what: str) -> OnWait:
    async def waiting(across_processes: bool) -> None:
        if across_processes:
            log.info("LightRAG %s: another process is writing it; waiting", what)

    return waiting
