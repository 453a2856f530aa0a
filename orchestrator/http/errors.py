"""Every failure becomes ``ErrorBody{error: {code, message}}`` with a fitting status code."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from knowledge.errors import (
    CollectionDamaged,
    CollectionMismatch,
    DataDirInUse,
    DependencyRejected,
    DependencyUnavailable,
    InvalidInput,
    KnowledgeError,
)
from orchestrator.errors import JobCancelled
from orchestrator.http.replies import error_response, retry_after_header
from orchestrator_client.errors import JobConflict, JobNotFound

log = logging.getLogger("shield.orchestrator.http")

MAX_LISTED_ERRORS = 10
# FastAPI's detail when reading the body failed other than as a JSON syntax error.
BODY_PARSE_FAILED = "There was an error parsing the body"
_SOURCES = {"body", "query", "path", "header", "cookie"}
_TAGS = {"crawl", "document"}

# Most specific first: the first class the error is an instance of decides.
_STATUS: list[tuple[type[KnowledgeError], int]] = [
    (JobNotFound, 404),
    (JobConflict, 409),
    (JobCancelled, 409),
    (CollectionMismatch, 409),
    (InvalidInput, 422),
    (DependencyUnavailable, 503),
    (CollectionDamaged, 503),
    (DataDirInUse, 503),
    (DependencyRejected, 502),
]


def status_of(exc: KnowledgeError) -> int:
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 400


def _where(loc: Sequence[Any]) -> str:
    parts = list(loc)
    source = parts.pop(0) if parts and parts[0] in _SOURCES else None
    if source == "body" and parts and parts[0] in _TAGS:
        parts.pop(0)  # the union's tag pydantic adds: the user never wrote it
    if source == "header" and parts:
        return "header " + "-".join(w.capitalize() for w in str(parts[0]).split("-"))
    return ".".join(str(p) for p in parts) or ("request body" if source == "body" else "request")


def _describe_one(err: dict[str, Any]) -> str:
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    if kind == "json_invalid":
        loc = list(err.get("loc", ()))
        at = f" at character {loc[-1]}" if len(loc) > 1 else ""
        return f"the body is not valid JSON ({ctx.get('error', 'decode error')}{at})"
    if kind == "union_tag_invalid":
        return f"kind: must be 'crawl' or 'document' (got {str(ctx.get('tag', ''))[:50]!r})"
    if kind == "union_tag_not_found":
        return "kind: missing; say 'crawl' or 'document'"
    where = _where(err.get("loc", ()))
    if kind in ("model_attributes_type", "dict_type", "model_type") and where == "request body":
        return "request body: must be a JSON object with a 'kind' of 'crawl' or 'document'"
    if kind == "missing" and where == "request body":
        return "request body: missing; send a JSON object with a 'kind' of 'crawl' or 'document'"
    if kind == "string_pattern_mismatch" and where == "header Idempotency-Key":
        return f"{where}: use printable characters only (a UUID is a good choice)"
    if kind == "extra_forbidden":
        return f"{where}: unknown field (the schema is at /docs)"
    message = str(err.get("msg", "invalid"))
    message = message.removeprefix("Value error, ")
    return f"{where}: {message}"


def describe_validation(errors: Sequence[Any]) -> str:
    """One readable line per bad field: 'max_pages: Input should be greater than ...'."""
    parts: list[str] = []
    for err in errors:
        line = _describe_one(dict(err))
        if line not in parts:
            parts.append(line)
    extra = len(parts) - MAX_LISTED_ERRORS
    text = "; ".join(parts[:MAX_LISTED_ERRORS])
    if extra > 0:
        text += f"; and {extra} more"
    return "Invalid request: " + (text or "the request does not match the schema (see /docs)")


async def _on_validation(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return error_response(422, "invalid_input", describe_validation(exc.errors()))


async def _on_domain(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, KnowledgeError)
    status = status_of(exc)
    headers = None
    if status == 503:
        headers = retry_after_header(getattr(exc, "retry_after", None))
    return error_response(status, exc.code, str(exc), headers)


def allowed_methods(request: Request) -> str:
    """Every method the path's routes take: Starlette's Allow names the first route's only
    (GET for /jobs/{job_id}, which DELETE serves too)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))


def unreadable_body(cause: BaseException | None) -> str:
    """Why FastAPI could not parse a body it calls only 'an error parsing the body'."""
    if isinstance(cause, UnicodeDecodeError):
        return "the body is not valid JSON (it is not UTF-8 text)"
    if isinstance(cause, RecursionError):
        return "the body is not valid JSON we can read (nested too deeply)"
    return "the body could not be read as JSON"


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        message = f"No such route: {request.method} {request.url.path[:200]} (routes: /docs)."
        return error_response(404, "not_found", message, dict(exc.headers or {}))
    if exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path[:200]}."
        headers = {**(exc.headers or {}), "Allow": allowed_methods(request)}
        return error_response(405, "method_not_allowed", message, headers)
    if exc.status_code == 400 and exc.detail == BODY_PARSE_FAILED:
        # A body that is not JSON answers 422 like any other invalid body (json_invalid).
        message = f"Invalid request: {unreadable_body(exc.__cause__)}; send a JSON object."
        return error_response(422, "invalid_input", message)
    code = "invalid_input" if 400 <= exc.status_code < 500 else "error"
    return error_response(exc.status_code, code, str(exc.detail), dict(exc.headers or {}))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(KnowledgeError, _on_domain)
    app.add_exception_handler(StarletteHTTPException, _on_http)


class GuardedRoute(APIRoute):
    """Unexpected errors answer 500 with a request id, logged with their traceback.

    Caught here rather than by an ``Exception`` handler: Starlette's outermost error
    middleware re-raises after answering, which would crash an in-process (ASGI transport)
    caller and print the traceback twice under uvicorn.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except (StarletteHTTPException, RequestValidationError, KnowledgeError):
                raise
            except Exception:
                rid = uuid.uuid4().hex[:12]
                log.exception(
                    "internal error (request id %s) on %s %s", rid, request.method, self.path
                )
                return error_response(
                    500,
                    "internal_error",
                    f"internal error (request id {rid}); the orchestrator's log has details.",
                    {"X-Request-ID": rid},
                )

        return guarded
