"""The MCP server as `shield-mcp serve` composes it, from settings values."""

from __future__ import annotations

from typing import Any

from fastmcp import FastMCP

from mcp_server.composition import compose_server
from mcp_server.settings import ServerSettings
from orchestrator.settings import OrchestratorSettings


def shield_server(**values: Any) -> FastMCP:
    """``values`` of the server's settings and, when it hosts the orchestrator (no
    orchestrator_url), of the orchestrator's: each goes to the settings that have it."""
    unknown = (
        set(values) - set(ServerSettings.model_fields) - set(OrchestratorSettings.model_fields)
    )
    if unknown:
        raise TypeError(f"no such setting: {sorted(unknown)}")
    server = ServerSettings(**{k: v for k, v in values.items() if k in ServerSettings.model_fields})
    hosted = None
    if server.orchestrator_url is None:
        fields = OrchestratorSettings.model_fields
        hosted = OrchestratorSettings(**{k: v for k, v in values.items() if k in fields})
    return compose_server(server, hosted).mcp
