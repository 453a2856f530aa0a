"""Prometheus metrics of the MCP server (names fixed by the design: dashboards use them)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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


def declare_tools(names: list[str]) -> None:
    """Create every tool's series at zero, so dashboards and rate() see them before traffic."""
    for name in names:
        TOOL_DURATION.labels(name)
        for status in ("success", "error"):
            TOOL_CALLS.labels(name, status)
