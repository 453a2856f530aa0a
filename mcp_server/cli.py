"""The ``shield-mcp`` command."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import sys

from knowledge.errors import KnowledgeError

log = logging.getLogger("shield")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shield-mcp", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="Run the MCP server (stdio or streamable HTTP).")
    serve.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    serve.add_argument("--host", default="127.0.0.1", help="HTTP bind address.")
    serve.add_argument("--port", type=int, default=8000, help="HTTP port.")
    serve.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        help="Bind a non-loopback address without SHIELD_MCP_TOKEN (not recommended).",
    )
    return parser


async def _serve(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from mcp_server.app import build_http_app, build_server
    from mcp_server.runtime import Runtime
    from mcp_server.settings import ServerSettings

    try:
        settings = ServerSettings()
    except ValidationError as exc:
        problems = "; ".join(
            f"SHIELD_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        )
        print(f"shield-mcp: bad configuration: {problems}", file=sys.stderr)
        return 2
    exposed = args.transport == "http" and not is_loopback(args.host)
    allowed = args.allow_unauthenticated or settings.allow_unauthenticated
    if exposed and settings.mcp_token is None and not allowed:
        print(
            f"shield-mcp: refusing to serve on {args.host} without authentication. Set "
            "SHIELD_MCP_TOKEN, bind 127.0.0.1, or pass --allow-unauthenticated.",
            file=sys.stderr,
        )
        return 2
    from mcp_server import logs

    logs.configure(settings.log_level, settings.log_format)
    runtime = Runtime(settings)
    try:
        runtime.start()  # fail now, not at the first tool call, if the data dir is taken
    except KnowledgeError as exc:
        print(f"shield-mcp: {exc}", file=sys.stderr)
        return 2
    mcp = build_server(settings, runtime)
    store = "Qdrant server" if settings.qdrant_url else f"embedded store in {settings.data_dir}"
    log.info(
        "shield-mcp serving over %s; %s; embedder %s/%s",
        args.transport,
        store,
        settings.embedder,
        settings.model_name,
    )
    if args.transport == "stdio":
        await mcp.run_stdio_async(show_banner=False)
        return 0
    import uvicorn

    config = uvicorn.Config(
        build_http_app(mcp, settings),
        host=args.host,
        port=args.port,
        log_config=None,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    await server.serve()
    return 0 if server.started else 1


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        try:
            return asyncio.run(_serve(args))
        except KeyboardInterrupt:
            return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
