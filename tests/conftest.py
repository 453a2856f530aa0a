"""Shared fixtures. Everything here runs real components; see tests/support.py.

Tests that need one of this machine's services are marked ``postgres`` or ``redis``. Each
service is probed once per session (a TCP connect); when it is unreachable its tests are
skipped with a line saying what to start, or fail with that line when
SHIELD_TEST_REQUIRE_SERVICES=1 (CI sets it, so a run never passes by skipping).

SHIELD_TEST_PG_PORT and SHIELD_TEST_REDIS_PORT move only the probe, not the tests: pointing
one at a port where nothing listens shows the skip (or failure) path without stopping the
service.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import threading
import traceback
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import circuitbreaker
import pytest

from knowledge.embeddings.local import LocalEmbedder
from tests import support
from tests.support import BreakerClock

if TYPE_CHECKING:
    from orchestrator.pipeline.convert.converter import Converter

# Read before the SHIELD_* variables are removed from the environment of the tests.
REQUIRE_SERVICES = os.environ.get("SHIELD_TEST_REQUIRE_SERVICES", "").lower() in {
    "1",
    "true",
    "yes",
}


@dataclass(frozen=True)
class Service:
    name: str
    port: int
    start: str
    host: str = "127.0.0.1"

    def unreachable(self) -> str:
        return (
            f"{self.name} is not reachable at {self.host}:{self.port}: {self.start}, "
            "or run `make test-fast`"
        )


def _probe_port(variable: str, default: int) -> int:
    return int(os.environ.get(variable) or default)


SERVICES = {
    "postgres": Service(
        "PostgreSQL",
        _probe_port("SHIELD_TEST_PG_PORT", 5432),
        "start it (`pg_ctlcluster 15 main start`, or any PostgreSQL with trust auth for "
        "user postgres on that port)",
    ),
    "redis": Service(
        "Redis",
        _probe_port("SHIELD_TEST_REDIS_PORT", 6379),
        "start it (`redis-server --daemonize yes`, or any Redis on that port)",
    ),
}
_reachable: dict[str, bool] = {}  # marker -> probe result, once per session


def _is_reachable(marker: str) -> bool:
    if marker not in _reachable:
        service = SERVICES[marker]
        try:
            with socket.create_connection((service.host, service.port), timeout=2.0):
                _reachable[marker] = True
        except OSError:
            _reachable[marker] = False
    return _reachable[marker]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip (or, with SHIELD_TEST_REQUIRE_SERVICES=1, fail) a test whose service is down,
    before any of its fixtures try to use it."""
    for marker, service in SERVICES.items():
        if item.get_closest_marker(marker) is not None and not _is_reachable(marker):
            if REQUIRE_SERVICES:
                pytest.fail(service.unreachable(), pytrace=False)
            pytest.skip(service.unreachable())


@pytest.hookimpl(hookwrapper=True, optionalhook=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> Iterator[None]:
    """On a timeout in an async test, print where each of its asyncio tasks waits.

    pytest-timeout's traceback is the stack at the moment of the alarm; for an async test
    that is the event loop waiting in ``select``, not the ``await`` that hangs. The stacks
    of the loop's tasks (in the test's captured stderr) show that ``await``.
    """
    yield
    handler = signal.getsignal(signal.SIGALRM)
    if not callable(handler):
        return

    def tasks_then_fail(signum: int, frame: FrameType | None) -> None:
        __tracebackhide__ = True
        with contextlib.suppress(RuntimeError):  # no loop runs: a synchronous test
            for task in asyncio.all_tasks(asyncio.get_running_loop()):
                print(f"asyncio task {task.get_name()} waits at:", file=sys.stderr)
                print("".join(_awaiting(task.get_coro())), file=sys.stderr)
        handler(signum, frame)

    signal.signal(signal.SIGALRM, tasks_then_fail)


def _awaiting(coro: Any) -> list[str]:
    """The chain of ``await`` a suspended coroutine waits in, outermost first."""
    frames = []
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None)
        if frame is None:
            frame = getattr(coro, "gi_frame", None)
        if frame is not None:
            frames.append((frame, frame.f_lineno))
        coro = (
            getattr(coro, "cr_await", None)
            or getattr(coro, "ag_await", None)
            or getattr(coro, "gi_yieldfrom", None)
        )
    return traceback.format_list(traceback.StackSummary.extract(frames))


def _remove_shield_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SHIELD_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session", autouse=True)
def _no_shield_environment_in_session() -> Iterator[None]:
    """An exported SHIELD_QUEUE_URL, SHIELD_ORCHESTRATOR_URL, ... reaches no session
    fixture (nor a process one starts) either."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        _remove_shield_variables(monkeypatch)
        yield


@pytest.fixture(autouse=True)
def _no_shield_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings read the environment: each test starts from none of the SHIELD_* variables
    of the shell that runs the suite (subprocesses inherit this environment too)."""
    _remove_shield_variables(monkeypatch)


@pytest.fixture(scope="session")
def converter() -> Iterator[Converter]:
    """One docling child process for the session, since each costs ~8 s to start. Tests
    that must kill or time out a child of their own make their own Converter."""
    from orchestrator.pipeline.convert.converter import Converter

    conv = Converter(timeout=120.0, max_tokens=256)
    yield conv
    asyncio.run(conv.aclose())


@pytest.fixture(scope="session", autouse=True)
def _docling_starts_early(
    request: pytest.FixtureRequest, _no_shield_environment_in_session: None
) -> None:
    """When the run includes tests that use ``converter``, its docling child is started at
    the beginning of the session, in the background: its import then overlaps the tests
    that come first instead of holding up the first test that converts."""
    if not any("converter" in getattr(item, "fixturenames", ()) for item in request.session.items):
        return
    conv: Converter = request.getfixturevalue("converter")

    def warm_up() -> None:
        # Should it fail, the first test that converts fails the same way, and says why.
        with contextlib.suppress(Exception):
            asyncio.run(conv.warm_up())

    threading.Thread(target=warm_up, name="docling-warm-up", daemon=True).start()


@pytest.fixture(scope="session")
def local_embedder_session() -> LocalEmbedder:
    """One loaded copy of the real offline model for the whole run (loading costs ~0.5 s)."""
    return LocalEmbedder()


@pytest.fixture
async def local_embedder(local_embedder_session: LocalEmbedder) -> AsyncIterator[LocalEmbedder]:
    yield local_embedder_session


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def docs_dir(tmp_path: Path) -> Path:
    """A directory for documents to ingest (tests make it an ingest root)."""
    path = tmp_path / "docs"
    path.mkdir()
    return path


@pytest.fixture
def dead_port() -> Iterator[int]:
    """A port of 127.0.0.1 that refuses connections for the whole test (a service that is
    down); see ``support.closed_port``."""
    with support.closed_port() as port:
        yield port


@pytest.fixture
def breaker_clock(monkeypatch: pytest.MonkeyPatch) -> BreakerClock:
    """Circuit breakers on a clock the test moves: recovery comes when the test says so."""
    clock = BreakerClock()
    monkeypatch.setattr(circuitbreaker, "monotonic", clock)
    return clock
