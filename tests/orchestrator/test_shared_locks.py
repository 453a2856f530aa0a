"""Named locks: within a process, and across processes through PostgreSQL advisory locks.

The local part of a lock is per event loop, so a second event loop in a thread, with an
engine (PostgreSQL sessions) of its own, meets the first only in PostgreSQL, as a second
worker process would.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import uuid

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from orchestrator.shared_locks import SharedLocks, held_names

URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


def _other_process(name: str, namespace: str, took: list[float], waits: list[bool]) -> None:
    async def main() -> None:
        engine = create_async_engine(URL)

        async def note(across_processes: bool) -> None:
            waits.append(across_processes)

        try:
            async with SharedLocks(namespace, engine).hold(name, on_wait=note):
                took.append(time.monotonic())
        finally:
            await engine.dispose()

    asyncio.run(main())


@pytest.mark.postgres
async def test_a_name_held_by_another_process_waits_until_it_is_released() -> None:
    name = f"docs\x00{uuid.uuid4()}"
    engine = create_async_engine(URL)
    try:
        async with SharedLocks("source", engine).hold(name):
            # Another namespace, same name: another lock, taken at once.
            took_other: list[float] = []
            other = threading.Thread(target=_other_process, args=(name, "lightrag", took_other, []))
            other.start()
            await asyncio.to_thread(other.join, 30)
            assert took_other

            took: list[float] = []
            waits: list[bool] = []
            waiter = threading.Thread(target=_other_process, args=(name, "source", took, waits))
            waiter.start()
            await asyncio.sleep(1.0)
            assert not took, "took a name another process holds"
            assert waits == [True]
            released = time.monotonic()
        await asyncio.to_thread(waiter.join, 30)
        assert took and took[0] >= released
    finally:
        await engine.dispose()


async def test_without_postgres_the_lock_holds_within_the_process() -> None:
    locks = SharedLocks("source")
    order: list[str] = []
    waits: list[bool] = []

    async def note(across_processes: bool) -> None:
        waits.append(across_processes)

    async def job(tag: str, pause: float) -> None:
        async with locks.hold("docs\x00same", on_wait=note):
            order.append(f"{tag} in")
            await asyncio.sleep(pause)
            order.append(f"{tag} out")

    await asyncio.gather(job("a", 0.2), job("b", 0))
    assert order == ["a in", "a out", "b in", "b out"]
    assert waits == [False]
    gc.collect()
    assert "docs\x00same" not in held_names("source")


def test_a_sqlite_engine_gives_process_local_locks() -> None:
    engine = create_async_engine("sqlite+aiosqlite:///:memory:")
    assert SharedLocks("source", engine).engine is None
