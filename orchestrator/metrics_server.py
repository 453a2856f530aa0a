"""A worker's own HTTP endpoint: ``GET /metrics`` for Prometheus and ``GET /health``.

A `shield-mcp worker` serves no API, but its jobs' counters, stage durations, embedding
and vector-store metrics live in its process only; Prometheus scrapes each worker here
(SHIELD_METRICS_PORT) and sums the counters. Plain Starlette on the worker's event loop
(uvicorn without its signal handling: the worker's own handlers stop it gracefully).
Behind SHIELD_ORCHESTRATOR_TOKEN when one is set, like the orchestrator's /metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from orchestrator.http.auth import refuse_unauthorized
from shield_common.guards import BearerAuth
from shield_common.process import is_loopback

log = logging.getLogger(__name__)

STOP_SECONDS = 5  # a scrape in flight gets this long when the worker stops


async def _metrics(_request: Request) -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


async def _health(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def metrics_app(token: str | None) -> ASGIApp:
    app: ASGIApp = Starlette(
        routes=[Route("/metrics", _metrics, methods=["GET"]), Route("/health", _health)]
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
async def serving(sock: socket.socket, token: str | None) -> AsyncIterator[None]:
    """Serve /metrics and /health on ``sock`` for as long as the block runs."""
    server = _Server(metrics_app(token), sock)
    server.start()
    host, port = sock.getsockname()[:2]
    log.info("worker metrics on http://%s:%d/metrics", host, port)
    try:
        yield
    finally:
        await server.stop()
