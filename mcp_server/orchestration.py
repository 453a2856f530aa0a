"""How the MCP server reaches the orchestrator: over HTTP, or in-process by default.

With SHIELD_ORCHESTRATOR_URL set, the client talks to that service. Without it, this process
runs the orchestrator itself (job store, queue, workers) and the client reaches its FastAPI
app through an ASGI transport: the same HTTP API, models and breaker in both modes, so the
embedded default exercises the code a distributed deployment runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import time
from typing import TYPE_CHECKING

from starlette.types import ASGIApp

from knowledge.errors import DependencyUnavailable, KnowledgeError
from knowledge.service import KnowledgeService
from knowledge.wiring import make_breaker, missing_modules
from mcp_server.settings import ServerSettings

if TYPE_CHECKING:
    import httpx

    from orchestrator.runtime import OrchestratorRuntime
    from orchestrator_client.client import OrchestratorClient

log = logging.getLogger("shield.orchestration")

# What the in-process orchestrator imports; checked without importing (start-up stays light).
ORCHESTRATOR_MODULES = ("fastapi", "sqlalchemy", "aiosqlite", "taskiq", "docling", "crawl4ai")
EMBEDDED_BASE_URL = "http://orchestrator.embedded"
RESTART_AFTER_SECONDS = 10.0
START_DELAY_SECONDS = 3.0


class OrchestratorLink:
    """Owns the orchestrator client, and in the embedded default the orchestrator itself."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self._client: OrchestratorClient | None = None
        self._runtime: OrchestratorRuntime | None = None
        self._starting: asyncio.Task[None] | None = None
        self._failure: str | None = None
        self._failed_at = 0.0
        self._service: KnowledgeService | None = None
        self._app: ASGIApp | None = None
        self._wanted = asyncio.Event()

    @property
    def embedded(self) -> bool:
        return self.settings.orchestrator_url is None

    def start(self, service: KnowledgeService) -> None:
        """Start in the background once asked for, or START_DELAY_SECONDS after start-up.

        Not at once: importing the orchestrator (SQLAlchemy, FastAPI, taskiq) takes over a
        second of CPU and would hold up the client's first initialize and tools/list. Jobs
        queued before a restart resume after the delay even if no one calls.
        """
        if self._starting is None:
            self._service = service
            self._starting = asyncio.get_running_loop().create_task(self._delayed(service))

    async def _delayed(self, service: KnowledgeService) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wanted.wait(), START_DELAY_SECONDS)
        # Committed: from here on stop() waits for the start instead of cancelling it.
        self._wanted.set()
        await self._start(service)

    async def _start(self, service: KnowledgeService) -> None:
        self._failure = None
        try:
            if self.embedded:
                missing = missing_modules(ORCHESTRATOR_MODULES)
                if missing:
                    raise KnowledgeError(
                        "crawl_web and ingest_doc need the orchestrator, which is not installed "
                        f"here (missing {', '.join(missing)}). Install 'shield-mcp[orchestrator]'"
                        ", or set SHIELD_ORCHESTRATOR_URL to a running orchestrator."
                    )
                # The imports take a while (SQLAlchemy, taskiq, FastAPI): keep them off the
                # event loop so the first tools/list is not held up.
                await asyncio.to_thread(_import_orchestrator)
                self._client = await self._start_embedded(service)
            else:
                self._client = self._remote_client()
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

    async def _start_embedded(self, service: KnowledgeService) -> OrchestratorClient:
        import httpx

        from orchestrator.http.app import build_app
        from orchestrator.runtime import OrchestratorRuntime

        runtime = OrchestratorRuntime(self.settings, service=service, run_workers=None)
        try:
            await runtime.start()
        except BaseException:
            # Half-started (say the job store opened, the queue did not): close what opened.
            with contextlib.suppress(Exception):
                await runtime.stop()
            raise
        self._runtime = runtime
        self._app = build_app(runtime, self.settings)
        return self._make_client(
            EMBEDDED_BASE_URL,
            httpx.ASGITransport(app=self._app),
            misanswer_hint="this is a bug in the in-process orchestrator; the server log may "
            "say more",
        )

    def _remote_client(self) -> OrchestratorClient:
        assert self.settings.orchestrator_url is not None
        return self._make_client(self.settings.orchestrator_url)

    def _make_client(
        self,
        base_url: str,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        misanswer_hint: str = "check SHIELD_ORCHESTRATOR_URL",
    ) -> OrchestratorClient:
        from orchestrator_client.client import OrchestratorClient

        token = self.settings.orchestrator_token
        return OrchestratorClient(
            base_url,
            token=token.get_secret_value() if token else None,
            timeout=self.settings.orchestrator_timeout,
            breaker=make_breaker(self.settings, "orchestrator"),
            transport=transport,
            misanswer_hint=misanswer_hint,
        )

    async def client(self) -> OrchestratorClient:
        if self._starting is None:
            raise DependencyUnavailable("The orchestrator link has not been started.")
        self._wanted.set()
        await asyncio.shield(self._starting)
        due = self._failed_at + RESTART_AFTER_SECONDS
        if self._client is None and self._service is not None and time.monotonic() >= due:
            # A database or queue that was down at boot may be back: try again, at most
            # every RESTART_AFTER_SECONDS, instead of failing until someone restarts us.
            self._starting = asyncio.get_running_loop().create_task(self._start(self._service))
            await asyncio.shield(self._starting)
        if self._client is None:
            raise DependencyUnavailable(self._failure or "The orchestrator is unavailable.")
        return self._client

    async def app(self) -> ASGIApp | None:
        """The in-process orchestrator's ASGI app, once started (None if remote or failed)."""
        if self._starting is None:
            return None
        self._wanted.set()
        await asyncio.shield(self._starting)
        return self._app

    async def refresh_metrics(self) -> None:
        """Job gauges as of now, for the server's /metrics (embedded orchestrator only)."""
        if self._runtime is not None:
            from orchestrator.http.routes import refresh_job_gauges

            await refresh_job_gauges(self._runtime)

    async def stop(self) -> None:
        if self._starting is not None:
            if not self._wanted.is_set():
                # Still waiting out the delay (a short-lived process): nothing to start.
                self._starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._starting
            self._starting = None
            self._wanted.clear()
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        self._app = None
        if self._runtime is not None:
            await self._runtime.stop()
            self._runtime = None


def _import_orchestrator() -> None:
    for module in ("orchestrator.runtime", "orchestrator.http.app", "orchestrator_client.client"):
        importlib.import_module(module)
