"""How the MCP server reaches the orchestrator: over HTTP, or in-process by default.

The link does not know which: it is handed a ``connect`` coroutine (composition.py) that
returns a ``Connection`` — a client for a remote orchestrator, or the client, app and stop
of one it started in this process. In both modes the tools speak the same HTTP API
through the same breaker. The link decides *when*: in the background, a few seconds after
start-up or at the first call that needs it, and again after a failed start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.types import ASGIApp

from knowledge.errors import DependencyUnavailable, KnowledgeError
from knowledge.service import KnowledgeService

if TYPE_CHECKING:
    from orchestrator_client.client import OrchestratorClient

log = logging.getLogger("shield.orchestration")

RESTART_AFTER_SECONDS = 10.0
START_DELAY_SECONDS = 3.0


@dataclass
class Connection:
    client: OrchestratorClient
    app: ASGIApp | None = None  # the in-process orchestrator's API (embedded default)
    stop: Callable[[], Awaitable[None]] | None = None  # stops what connect() started
    refresh_metrics: Callable[[], Awaitable[None]] | None = None  # job gauges, for /metrics


Connect = Callable[[KnowledgeService], Awaitable[Connection]]


class OrchestratorLink:
    """Owns the orchestrator client, and in the embedded default the orchestrator itself."""

    def __init__(
        self, connect: Connect, *, embedded: bool, start_delay: float = START_DELAY_SECONDS
    ) -> None:
        self._connect = connect
        self.embedded = embedded
        self._start_delay = start_delay
        self._connection: Connection | None = None
        self._starting: asyncio.Task[None] | None = None
        self._failure: str | None = None
        self._failed_at = 0.0
        self._service: KnowledgeService | None = None
        self._wanted = asyncio.Event()

    def start(self, service: KnowledgeService) -> None:
        """Start in the background once asked for, or after the start delay.

        Not at once: importing the orchestrator (SQLAlchemy, FastAPI, taskiq) takes over a
        second of CPU and would hold up the client's first initialize and tools/list. Jobs
        queued before a restart resume after the delay even if no one calls.
        """
        if self._starting is None:
            self._service = service
            self._starting = asyncio.get_running_loop().create_task(self._delayed(service))

    async def _delayed(self, service: KnowledgeService) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wanted.wait(), self._start_delay)
        # Committed: from here on stop() waits for the start instead of cancelling it.
        self._wanted.set()
        await self._start(service)

    async def _start(self, service: KnowledgeService) -> None:
        self._failure = None
        try:
            self._connection = await self._connect(service)
        except KnowledgeError as exc:
            self._failure = f"{exc} The next call tries again."
            log.error("orchestrator unavailable: %s", exc)
        except Exception as exc:
            self._failure = (
                f"The in-process orchestrator failed to start ({type(exc).__name__}); the "
                "server log has the details. The next call tries again."
            )
            log.exception("the in-process orchestrator failed to start")
        if self._failure is not None:
            self._failed_at = time.monotonic()

    async def _connected(self) -> Connection | None:
        if self._starting is None:
            return None
        self._wanted.set()
        await asyncio.shield(self._starting)
        due = self._failed_at + RESTART_AFTER_SECONDS
        if self._connection is None and self._service is not None and time.monotonic() >= due:
            # A database or queue that was down at boot may be back: try again, at most
            # every RESTART_AFTER_SECONDS, instead of failing until someone restarts us.
            self._starting = asyncio.get_running_loop().create_task(self._start(self._service))
            await asyncio.shield(self._starting)
        return self._connection

    async def client(self) -> OrchestratorClient:
        if self._starting is None:
            raise DependencyUnavailable("The orchestrator link has not been started.")
        connection = await self._connected()
        if connection is None:
            raise DependencyUnavailable(self._failure or "The orchestrator is unavailable.")
        return connection.client

    async def app(self) -> ASGIApp | None:
        """The in-process orchestrator's ASGI app, once started (None if remote or failed)."""
        if self._starting is None:
            return None
        self._wanted.set()
        await asyncio.shield(self._starting)
        return self._connection.app if self._connection is not None else None

    async def refresh_metrics(self) -> None:
        """Job gauges as of now, for the server's /metrics (embedded orchestrator only)."""
        if self._connection is not None and self._connection.refresh_metrics is not None:
            await self._connection.refresh_metrics()

    async def stop(self) -> None:
        if self._starting is not None:
            if not self._wanted.is_set():
                # Still waiting out the delay (a short-lived process): nothing to start.
                self._starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._starting
            self._starting = None
            self._wanted.clear()
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.client.aclose()
            if connection.stop is not None:
                await connection.stop()
