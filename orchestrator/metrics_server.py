"""A worker's own HTTP endpoint: ``GET /metrics`` for Prometheus, ``GET /ready`` and
``GET /health``.

A `shield-mcp worker` serves no API, but its jobs' counters, stage durations, embedding
and vector-store metrics live in its process only; Prometheus scrapes each worker here
(SHIELD_METRICS_PORT) and sums the counters. Plain Starlette on the worker's event loop
(uvicorn without its signal handling: the worker's own handlers stop it gracefully).
/ready answers from the worker runtime's dependency probes with the orchestrator's /ready
body (503 naming each dependency that is down), so an orchestrator such as Kubernetes can
tell a worker that cannot work from one that is merely idle. /metrics and /ready are behind
SHIELD_ORCHESTRATOR_TOKEN when one is set, like the orchestrator's; /health stays open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from orchestrator.http.auth import refuse_unauthorized
from orchestrator.http.replies import ReadinessCheck, ready_response
from shield_common.guards import BearerAuth
from shield_common.process import is_loopback

if TYPE_CHECKING:
    from orchestrator.runtime import OrchestratorRuntime

log = logging.getLogger(__name__)

STOP_SECONDS = 5  # a scrape in flight gets this long when the worker stops


async def _metrics(_request: Request) -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


async def _health(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def _ready_route(readiness: ReadinessCheck) -> Route:
    async def ready(_request: Request) -> Response:
        return await ready_response(readiness, "worker")

    return Route("/ready", ready, methods=["GET"])


def worker_readiness(runtime: OrchestratorRuntime) -> ReadinessCheck:
    """The runtime's probes once it runs them. Before (the server is up during the start)
    and after (during the graceful stop) there is no worker to be ready: checks made then
    would only find a job store the runtime has not opened or has closed."""

    async def readiness() -> dict[str, str]:
        if runtime.prober is None:
            return {"worker": "not running (starting or stopping)"}
        return await runtime.readiness()

    return readiness


def metrics_app(token: str | None, readiness: ReadinessCheck) -> ASGIApp:
    app: ASGIApp = Starlette(
        routes=[
            Route("/metrics", _metrics, methods=["GET"]),
            _ready_route(readiness),
            Route("/health", _health),
        ]
    )
    if token is not None:
        app = BearerAuth(app, token, refuse=refuse_unauthorized)
    return app


def exposure_refusal(host: str, token: str | None) -> str | None:
    """Why the worker must not serve metrics on ``host``, or None when it may."""
    if is_loopback(host) or token is not None:
        return None
    return (
        f"refusing to serve worker metrics on {host} (SHIELD_METRICS_HOST) without "
        "authentication: set SHIELD_ORCHESTRATOR_TOKEN, or SHIELD_METRICS_HOST=127.0.0.1."
    )


def bind(host: str, port: int) -> socket.socket:
    """The server's socket, bound now so a taken port fails before the worker starts.

    Raises OSError whose text names the address (and says "address already in use").
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        reason = (exc.strerror or str(exc)).lower()
        raise OSError(exc.errno, f"cannot serve metrics on {host}:{port}: {reason}") from exc
    sock.setblocking(False)
    return sock


def _report_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the worker's metrics server stopped: %s", task.exception())


class _Server:
    """uvicorn's server minus its signal handlers, which would replace the worker's."""

    def __init__(self, app: ASGIApp, sock: socket.socket) -> None:
        import uvicorn

        class Quiet(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                yield

        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=STOP_SECONDS,
        )
        self.server = Quiet(config)
        self.sock = sock
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        # The socket is bound already; it listens once the task has run its first step.
        self.task = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        self.task.add_done_callback(_report_end)

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            # A server that had failed was logged when it ended; stopping goes on.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        self.sock.close()


@contextlib.asynccontextmanager
async def serving(
    sock: socket.socket, token: str | None, readiness: ReadinessCheck
) -> AsyncIterator[None]:
    """Serve /metrics, /ready and /health on ``sock`` for as long as the block runs."""
    server = _Server(metrics_app(token, readiness), sock)
    server.start()
    host, port = sock.getsockname()[:2]
    log.info("worker metrics on http://%s:%d/metrics", host, port)
    try:
        yield
    finally:
        await server.stop()
