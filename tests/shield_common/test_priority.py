"""Background work runs niced, the request path does not: real threads, read from /proc.

The nice value of a thread is read from ``/proc/self/task/<tid>/stat`` (field 19), not
through the module under test. Only throwaway threads are lowered here: a lowered thread
cannot be raised back, and the test runner's own threads must stay as they are.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from knowledge.embeddings.local import LocalEmbedder
from shield_common import priority

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice is Linux's")

T = TypeVar("T")
# The suite may itself run niced (`nice make test`): values are compared with its own.
BASE = os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) if sys.platform == "linux" else 0


def nice_of(tid: int) -> int:
    fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[16])  # field 19 of stat; fields[0] is field 3 (state)


def all_nice() -> dict[int, int]:
    out = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            out[int(task.name)] = nice_of(int(task.name))
        except FileNotFoundError:  # a thread that ended meanwhile
            continue
    return out


def in_thread(fn: Callable[[], T]) -> T:
    """``fn`` in a fresh thread that ends afterwards."""
    box: list[T] = []
    thread = threading.Thread(target=lambda: box.append(fn()))
    thread.start()
    thread.join()
    return box[0]


@pytest.fixture
def configured() -> Iterator[Callable[[int], None]]:
    """``priority.configure`` for one test, reset to what it was afterwards."""
    before = priority.background_nice()
    yield priority.configure
    priority.configure(before)


def test_a_lowered_thread_and_what_it_starts_run_niced_the_rest_not() -> None:
    main_before = nice_of(threading.get_native_id())

    def lowered() -> tuple[bool, int, int]:
        changed = priority.lower_thread_priority(7)
        child = in_thread(lambda: nice_of(threading.get_native_id()))
        return changed, nice_of(threading.get_native_id()), child

    assert BASE < 7, "run the suite at a nice value below 7"
    changed, own, started_by_it = in_thread(lowered)
    assert changed
    assert own == 7
    assert started_by_it == 7  # inherited: onnxruntime's pool threads rely on this
    assert nice_of(threading.get_native_id()) == main_before


def test_zero_leaves_the_thread_as_it_is() -> None:
    def unchanged() -> tuple[bool, int, int]:
        before = nice_of(threading.get_native_id())
        return priority.lower_thread_priority(0), before, nice_of(threading.get_native_id())

    changed, before, after = in_thread(unchanged)
    assert not changed
    assert after == before


def test_never_raises_a_thread_back() -> None:
    def twice() -> int:
        priority.lower_thread_priority(12)
        priority.lower_thread_priority(5)  # a lower value than the thread has: ignored
        return nice_of(threading.get_native_id())

    assert in_thread(twice) == 12


@pytest.mark.parametrize("nice", [9, 0])
def test_background_executor_threads_take_the_configured_value(
    configured: Callable[[int], None], nice: int
) -> None:
    configured(nice)
    executor = priority.background_executor("test-bg")
    try:
        got = executor.submit(lambda: nice_of(threading.get_native_id())).result()
    finally:
        executor.shutdown()
    assert got == max(nice, BASE)  # 0: as the thread that started it


async def test_the_background_mark_follows_a_job_into_its_tasks_only() -> None:
    async def seen() -> bool:
        return priority.in_background()

    with priority.background():
        inside = await asyncio.create_task(seen())
        in_a_thread = await asyncio.to_thread(priority.in_background)
    assert inside and in_a_thread
    assert not await asyncio.create_task(seen())
    assert not priority.in_background()


async def test_a_jobs_embedding_runs_niced_and_a_querys_does_not(
    configured: Callable[[int], None],
) -> None:
    configured(11)
    # A fresh embedder: its session (and onnxruntime's pool threads) are made in this test.
    embedder = LocalEmbedder(threads=2)
    before = set(all_nice())
    try:
        query = await embedder.embed_documents(["where is the billing database?"])
        with priority.background():
            job = await embedder.embed_documents(["a chunk a job stores", "and another one"])
        again = await embedder.embed_documents(["where is the billing database?"])
        added = {tid: n for tid, n in all_nice().items() if tid not in before}
    finally:
        await embedder.aclose()
    assert len(job) == 2 and query == again
    # The job's thread is the only new one lowered; the query's thread and the session's
    # pool threads (made on the query's thread, whoever calls first) stay as they were.
    assert sorted(added.values()) == [BASE] * (len(added) - 1) + [11]


async def test_the_first_call_being_a_jobs_does_not_lower_the_sessions_threads(
    configured: Callable[[int], None],
) -> None:
    configured(11)
    embedder = LocalEmbedder(threads=3)  # its own cached session, made by this test
    before = set(all_nice())
    try:
        with priority.background():
            await embedder.embed_documents(["the very first call is a job's"])
        added = {tid: n for tid, n in all_nice().items() if tid not in before}
    finally:
        await embedder.aclose()
    assert list(added.values()).count(11) == 1
    assert len(added) >= 3  # the request thread, the job thread and onnxruntime's pool
