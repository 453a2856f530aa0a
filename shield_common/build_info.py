"""``shield_build_info{version}``: which release a process runs, for every process.

Importing this module registers the gauge in the default registry; Python imports a module
once per process, so every process that imports it (the MCP server, the orchestrator, a
worker, or all three in one) exports exactly one series.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from prometheus_client import Gauge

DISTRIBUTION = "shield-mcp"


def installed_version() -> str:
    """The installed distribution's version; "unknown" when run from an uninstalled tree."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown"


VERSION = installed_version()
BUILD_INFO = Gauge(
    "shield_build_info",
    "Always 1; the label says which shield-mcp version this process runs.",
    ["version"],
)
BUILD_INFO.labels(VERSION).set(1)
