"""Prometheus metrics of the MCP server (names fixed by the design: dashboards use them).

``mcp_server_operation_duration_seconds`` is OpenTelemetry's ``mcp.server.operation.duration``
(semantic conventions for MCP) under Prometheus naming, so generic MCP dashboards work:
``mcp.method.name`` → ``mcp_method_name``, ``gen_ai.tool.name`` → ``gen_ai_tool_name``,
``error.type`` → ``error_type``, with the convention's bucket boundaries.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

import shield_common.build_info  # noqa: F401 - shield_build_info, once per process

TOOL_CALLS = Counter(
    "tool_calls_total",
    "MCP tool calls by tool and outcome (success or error).",
    ["tool", "status"],
)
TOOL_DURATION = Histogram(
    "tool_duration_seconds",
    "Time to answer an MCP tool call, by tool.",
    ["tool"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
TOOL_ERRORS = Counter(
    "tool_errors_total",
    "MCP tool calls that ended in an error, by tool and reason: invalid_argument (the "
    "caller's to fix), unavailable (a dependency down, a breaker open, a timeout) or "
    "internal (anything else).",
    ["tool", "reason"],
)
OPERATION_DURATION = Histogram(
    "mcp_server_operation_duration_seconds",
    "Time to answer an MCP request or notification (OpenTelemetry "
    "mcp.server.operation.duration), by method, tool and error type.",
    ["mcp_method_name", "gen_ai_tool_name", "error_type"],
    buckets=(0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300),
)

UNKNOWN_TOOL = "unknown"
ERROR_REASONS = ("invalid_argument", "unavailable", "internal")
# The MCP methods (2025-11-25 and 2026-07-28 revisions) a client may send a server; any
# other name is labelled "other", so a client inventing methods cannot create series.
KNOWN_METHODS = frozenset(
    {
        "initialize",
        "ping",
        "server/discover",
        "tools/list",
        "tools/call",
        "resources/list",
        "resources/read",
        "resources/templates/list",
        "resources/subscribe",
        "resources/unsubscribe",
        "prompts/list",
        "prompts/get",
        "completion/complete",
        "logging/setLevel",
        "tasks/get",
        "tasks/list",
        "tasks/result",
        "tasks/cancel",
        "notifications/initialized",
        "notifications/cancelled",
        "notifications/progress",
        "notifications/roots/list_changed",
        "notifications/tasks/status",
    }
)
OTHER_METHOD = "other"
TOOL_ERROR = "tool_error"
OTHER_ERROR = "_OTHER"
# JSON-RPC's own codes and those MCP defines: error_type takes one of these or _OTHER.
KNOWN_ERROR_CODES = frozenset({-32700, -32600, -32601, -32602, -32603, -32002, -32042})


def declare_tools(names: list[str]) -> None:
    """Create every tool's series at zero, so dashboards and rate() see them before traffic."""
    for name in names:
        TOOL_DURATION.labels(name)
        for status in ("success", "error"):
            TOOL_CALLS.labels(name, status)
        for reason in ERROR_REASONS:
            TOOL_ERRORS.labels(name, reason)
        OPERATION_DURATION.labels("tools/call", name, "")
        OPERATION_DURATION.labels("tools/call", name, TOOL_ERROR)
    for method in ("initialize", "tools/list"):
        OPERATION_DURATION.labels(method, "", "")
