"""Logging set-up: text or JSON lines on stderr, with the request id of the tool call.

stdout belongs to the MCP stdio transport, so nothing here ever writes to it.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

request_id: ContextVar[str] = ContextVar("request_id", default="-")

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id"}


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class _DropToolErrorNoise(logging.Filter):
    _PREFIXES = ("Error calling tool", "Invalid arguments for tool")

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.name.startswith("fastmcp") and str(record.msg).startswith(self._PREFIXES)
        )


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RequestIdFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # fastmcp installs its own rich handler on its logger; route it through ours instead.
    for name in ("fastmcp", "mcp", "uvicorn", "uvicorn.error", "uvicorn.access"):
        lib = logging.getLogger(name)
        lib.handlers[:] = []
        lib.propagate = True
    logging.getLogger("uvicorn.access").setLevel("WARNING")
    logging.getLogger("httpx").setLevel("WARNING")
    # At DEBUG sse_starlette logs whole response chunks, i.e. stored text.
    logging.getLogger("sse_starlette").setLevel("INFO")
    # fastmcp logs every tool error at ERROR; a user's bad input is not an operator's
    # alarm. Our own per-call line says which calls failed, and real faults are logged
    # by the tools with their request id.
    handler.addFilter(_DropToolErrorNoise())
