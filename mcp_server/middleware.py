"""FastMCP middleware: request ids, metrics and a log line for every tool call, clean errors."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from fastmcp.exceptions import NotFoundError, ToolError, ValidationError
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools.base import ToolResult
from mcp import types as mt

from mcp_server.metrics import TOOL_CALLS, TOOL_DURATION
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
        tool = name if name in self.known_tools else "unknown"
        rid = uuid.uuid4().hex[:12]
        token = request_id.set(rid)
        start = time.perf_counter()
        status = "error"
        try:
            result = await call_next(context)
            status = "error" if getattr(result, "is_error", False) else "success"
            return result
        except ValidationError as exc:
            raise ToolError(_describe_validation(exc)) from exc
        except NotFoundError as exc:
            raise ToolError(
                f"Unknown tool {name[:100]!r}; this server has "
                f"{', '.join(sorted(self.known_tools))}."
            ) from exc
        except ToolError:
            raise
        except Exception as exc:
            log.exception("tool %s failed unexpectedly", tool)
            raise ToolError(
                f"Internal error in {tool} (request id {rid}); the server log has the details."
            ) from exc
        finally:
            elapsed = time.perf_counter() - start
            TOOL_CALLS.labels(tool, status).inc()
            TOOL_DURATION.labels(tool).observe(elapsed)
            duration_ms = round(elapsed * 1000, 2)
            log.info(
                "tool %s %s in %.1f ms",
                tool,
                status,
                duration_ms,
                extra={"tool": tool, "status": status, "duration_ms": duration_ms},
            )
            request_id.reset(token)


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
        raise ToolError(self.message)
