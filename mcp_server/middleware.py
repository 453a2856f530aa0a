"""FastMCP middleware: request ids, metrics and a log line for every tool call, clean errors."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import httpx
from fastmcp.exceptions import FastMCPError, NotFoundError, ToolError, ValidationError
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools.base import ToolResult
from mcp import types as mt
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError as ParamsError

from mcp_server.metrics import (
    KNOWN_ERROR_CODES,
    KNOWN_METHODS,
    OPERATION_DURATION,
    OTHER_ERROR,
    OTHER_METHOD,
    TOOL_CALLS,
    TOOL_DURATION,
    TOOL_ERROR,
    TOOL_ERRORS,
    UNKNOWN_TOOL,
)
from shield_common.logs import request_id

log = logging.getLogger("shield.tools")


_PLAIN_NAME = re.compile(r"[A-Za-z0-9_-]+")


def _location_part(part: Any) -> str:
    """An argument name as a person can see it: one that is empty, has spaces or control
    characters (an unknown key such as "" or "text ") is quoted and escaped."""
    if isinstance(part, str) and not _PLAIN_NAME.fullmatch(part):
        return ascii(part) if not part.isprintable() else repr(part)
    return str(part)


def describe_errors(errors: Iterable[Mapping[str, Any]]) -> str:
    """pydantic's report as one line per bad argument."""
    parts = []
    for err in errors:
        where = ".".join(_location_part(p) for p in err.get("loc", ()) if p != "call")
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{where}: {msg}" if where else msg)
    return "Invalid arguments: " + "; ".join(parts)


def _describe_validation(exc: ValidationError) -> str:
    cause: Any = exc.__cause__ or exc
    errors = getattr(cause, "errors", None)
    if callable(errors) and errors():
        return describe_errors(errors())
    return f"Invalid arguments: {exc}"


# KnowledgeError codes (knowledge/errors.py, orchestrator_client/errors.py and their
# subclasses) by what the caller can do about them.
_CALLER_CODES = frozenset({"invalid_input", "not_found", "conflict", "collection_mismatch"})
_DEPENDENCY_CODES = frozenset(
    {"dependency_unavailable", "dependency_rejected", "data_dir_in_use", "timeout"}
)


class ServerUnavailable(ToolError):
    """Every call is refused because this server cannot work (see ``Unavailable``)."""


def error_reason(exc: BaseException) -> str:
    """``tool_errors_total``'s reason for the exception that failed a tool call.

    The tools raise a ToolError *from* the domain error it words (tools.translated_errors),
    so the cause says what went wrong; a ToolError with no cause is the tool's own check
    of its arguments.
    """
    if isinstance(exc, ServerUnavailable):
        return "unavailable"
    if isinstance(exc, (ValidationError, NotFoundError)):
        return "invalid_argument"
    cause = exc.__cause__ if isinstance(exc, ToolError) else exc
    if cause is None:
        return "invalid_argument"
    code = getattr(cause, "code", None)
    if code in _CALLER_CODES:
        return "invalid_argument"
    if code in _DEPENDENCY_CODES or isinstance(cause, (TimeoutError, httpx.TimeoutException)):
        return "unavailable"
    return "internal"


class ToolCallMiddleware(Middleware):
    def __init__(self, known_tools: list[str]) -> None:
        # Metric labels come from this list only: a client inventing tool names must not
        # be able to create series without bound.
        self.known_tools = frozenset(known_tools)

    async def on_call_tool(
        self,
        context: MiddlewareContext[mt.CallToolRequestParams],
        call_next: CallNext[mt.CallToolRequestParams, ToolResult],
    ) -> ToolResult:
        name = context.message.name
        tool = name if name in self.known_tools else UNKNOWN_TOOL
        rid = uuid.uuid4().hex[:12]
        token = request_id.set(rid)
        start = time.perf_counter()
        status = "error"
        # A result flagged as an error without an exception: nothing says whose fault.
        reason = "internal"
        try:
            result = await call_next(context)
            status = "error" if getattr(result, "is_error", False) else "success"
            return result
        except ValidationError as exc:
            reason = error_reason(exc)
            raise ToolError(_describe_validation(exc)) from exc
        except NotFoundError as exc:
            reason = error_reason(exc)
            raise ToolError(
                f"Unknown tool {name[:100]!r}; this server has "
                f"{', '.join(sorted(self.known_tools))}."
            ) from exc
        except ToolError as exc:
            reason = error_reason(exc)
            raise
        except Exception as exc:
            reason = error_reason(exc)
            log.exception("tool %s failed unexpectedly", tool)
            raise ToolError(
                f"Internal error in {tool} (request id {rid}); the server log has the details."
            ) from exc
        finally:
            elapsed = time.perf_counter() - start
            TOOL_CALLS.labels(tool, status).inc()
            TOOL_DURATION.labels(tool).observe(elapsed)
            if status == "error":
                TOOL_ERRORS.labels(tool, reason).inc()
            duration_ms = round(elapsed * 1000, 2)
            log.info(
                "tool %s %s in %.1f ms",
                tool,
                status,
                duration_ms,
                extra={"tool": tool, "status": status, "duration_ms": duration_ms},
            )
            request_id.reset(token)


def _tool_name(message: Any) -> str | None:
    """The tool a tools/call names: typed params inside, raw params when it failed early."""
    name = getattr(message, "name", None)
    if name is None and isinstance(message, Mapping):
        params = message.get("params", message)
        name = params.get("name") if isinstance(params, Mapping) else None
    return name if isinstance(name, str) else None


def error_type(method: str, exc: BaseException) -> str:
    """OpenTelemetry's ``error.type`` for a failed operation: the JSON-RPC error code, or
    ``tool_error`` for a tool call the server answers with an ``isError`` result."""
    if isinstance(exc, (FastMCPError, NotFoundError)):
        if method == "tools/call":
            return TOOL_ERROR  # the handler turns these into an isError result
        return "-32602" if isinstance(exc, (NotFoundError, ValidationError)) else OTHER_ERROR
    if isinstance(exc, MCPError):
        return str(exc.code) if exc.code in KNOWN_ERROR_CODES else OTHER_ERROR
    if isinstance(exc, ParamsError):
        return "-32602"  # the SDK answers a params model that does not validate so
    return OTHER_ERROR


class OperationMetrics(Middleware):
    """``mcp_server_operation_duration_seconds`` for every request and notification.

    ``on_message`` sees each inbound message once, tools/call included (FastMCP runs the
    chain inside the handler for component methods and at the root for the rest).
    """

    def __init__(self, known_tools: list[str]) -> None:
        self.known_tools = frozenset(known_tools)

    async def on_message(
        self, context: MiddlewareContext[Any], call_next: CallNext[Any, Any]
    ) -> Any:
        method = context.method if context.method in KNOWN_METHODS else OTHER_METHOD
        tool = ""
        if method == "tools/call":
            name = _tool_name(context.message)
            tool = name if name in self.known_tools else UNKNOWN_TOOL
        start = time.perf_counter()
        error = ""
        try:
            result = await call_next(context)
            if getattr(result, "is_error", False):
                error = TOOL_ERROR
            return result
        except BaseException as exc:
            error = error_type(method, exc)
            raise
        finally:
            OPERATION_DURATION.labels(method, tool, error).observe(time.perf_counter() - start)


class Unavailable(Middleware):
    """Answers every tool call with one message: the server cannot work (its data dir is
    taken, say). Over stdio the client then shows why, instead of "Connection closed"."""

    def __init__(self, message: str) -> None:
        self.message = message

    async def on_call_tool(
        self,
        context: MiddlewareContext[mt.CallToolRequestParams],
        call_next: CallNext[mt.CallToolRequestParams, ToolResult],
    ) -> ToolResult:
        raise ServerUnavailable(self.message)
