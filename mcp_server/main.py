"""Entry point of `shield-mcp serve`: read settings, compose, serve over stdio or HTTP."""

from __future__ import annotations

import logging

from knowledge.errors import KnowledgeError
from mcp_server.composition import compose_server, hosted_settings
from mcp_server.settings import ServerSettings
from shield_common import logs
from shield_common.process import fail, load_settings, refuse_exposed

log = logging.getLogger("shield")


async def serve(transport: str, host: str, port: int, allow_unauthenticated: bool) -> int:
    settings = load_settings(ServerSettings)
    if settings is None:
        return 2
    hosted = hosted_settings(settings)
    if hosted is False:
        return 2
    allowed = allow_unauthenticated or settings.allow_unauthenticated
    if transport == "http" and refuse_exposed(
        host, settings.mcp_token, allowed, "SHIELD_MCP_TOKEN"
    ):
        return 2
    logs.configure(settings.log_level, settings.log_format)
    try:
        server = compose_server(settings, hosted)
    except KnowledgeError as exc:
        return fail(str(exc))
    unavailable: str | None = None
    try:
        server.parts.service()  # fail now, not at the first tool call, if the data dir is taken
    except KnowledgeError as exc:
        fail(str(exc))
        if transport != "stdio":
            return 2
        # A stdio client (Claude Desktop) would only say "Connection closed": serve, and
        # answer every call with the reason instead.
        unavailable = f"{exc} Restart this server once that is fixed."
        server = compose_server(settings, hosted, unavailable=unavailable)
    where = "Qdrant server" if settings.qdrant_url else f"embedded store in {settings.data_dir}"
    log.info(
        "shield-mcp serving over %s; %s; embedder %s/%s",
        transport,
        where,
        settings.embedder,
        settings.model_name,
    )
    if transport == "stdio":
        await server.mcp.run_stdio_async(show_banner=False)
        return 0 if unavailable is None else 2
    import uvicorn

    try:
        app = server.http_app()
    except KnowledgeError as exc:
        return fail(str(exc))
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    http = uvicorn.Server(config)
    await http.serve()
    return 0 if http.started else 1
