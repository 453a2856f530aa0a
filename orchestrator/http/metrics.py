"""Prometheus metrics of the HTTP API (names fixed by the design: dashboards use them).

The metric objects live at module level: a process (a test run) may build many apps, and
prometheus_client refuses to register a name twice.
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Histogram
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_REQUESTS = Counter(
    "api_requests_total",
    "Orchestrator HTTP requests by route template, method and status code.",
    ["endpoint", "method", "status"],
)
API_DURATION = Histogram(
    "api_duration_seconds",
    "Time to answer an orchestrator HTTP request, by route template.",
    ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0),
)

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def declare_endpoints(routes: list[BaseRoute]) -> None:
    """Create every route's duration series at zero. A series born at its first request
    already holds it, and rate() never counts a sample it has no predecessor for: the
    first submissions after a start would be missing from the accept-latency SLO."""
    for route in routes:
        path = getattr(route, "path", None)
        if isinstance(path, str):
            API_DURATION.labels(path)


def endpoint_of(scope: Scope) -> str:
    """The route template ("/jobs/{job_id}"), never the raw path: labels must stay bounded."""
    app = scope.get("app")
    routes: list[BaseRoute] = list(getattr(app, "routes", None) or [])
    for route in routes:
        match, _ = route.matches(scope)
        # PARTIAL: the path matched, the method did not (a 405) — still that endpoint.
        if match in (Match.FULL, Match.PARTIAL):
            path = getattr(route, "path", None)
            if isinstance(path, str):
                return path
    return "other"


class RequestMetrics:
    """Outermost middleware, so refusals (401, 413) are counted too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the server answers when the app dies before starting a response

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            endpoint = endpoint_of(scope)
            method = scope.get("method", "GET")
            API_REQUESTS.labels(
                endpoint, method if method in KNOWN_METHODS else "OTHER", str(status)
            ).inc()
            API_DURATION.labels(endpoint).observe(time.perf_counter() - start)
