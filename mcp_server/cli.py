"""The ``shield-mcp`` command."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import sys
from typing import TYPE_CHECKING, TypeVar

from knowledge.errors import KnowledgeError

if TYPE_CHECKING:
    from pydantic_settings import BaseSettings

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
    orch = sub.add_parser(
        "orchestrator", help="Run the orchestrator's job API (and its workers, unless a queue URL)."
    )
    orch.add_argument("--host", default="127.0.0.1", help="HTTP bind address.")
    orch.add_argument("--port", type=int, default=8001, help="HTTP port.")
    orch.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        help="Bind a non-loopback address without SHIELD_ORCHESTRATOR_TOKEN (not recommended).",
    )
    sub.add_parser("worker", help="Run a worker taking jobs from SHIELD_QUEUE_URL.")
    repair = sub.add_parser(
        "repair",
        help="Repair embedded collections holding passages that cannot be read back "
        "(stop the server first).",
    )
    repair.add_argument("collections", nargs="*", help="Collections to repair (default: all).")
    return parser


S = TypeVar("S", bound="BaseSettings")


def _settings(cls: type[S]) -> S | None:
    """The process's settings, or None after printing one line per bad variable."""
    from pydantic import ValidationError

    try:
        return cls()
    except ValidationError as exc:
        problems = "; ".join(
            f"SHIELD_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        )
        print(f"shield-mcp: bad configuration: {problems}", file=sys.stderr)
        return None


def _refuse_exposed(host: str, token: object, allowed: bool, variable: str) -> bool:
    if is_loopback(host) or token is not None or allowed:
        return False
    print(
        f"shield-mcp: refusing to serve on {host} without authentication. Set "
        f"{variable}, bind 127.0.0.1, or pass --allow-unauthenticated.",
        file=sys.stderr,
    )
    return True


async def _orchestrator(args: argparse.Namespace) -> int:
    from orchestrator.settings import OrchestratorSettings

    settings = _settings(OrchestratorSettings)
    if settings is None:
        return 2
    if _refuse_exposed(
        args.host,
        settings.orchestrator_token,
        args.allow_unauthenticated,
        "SHIELD_ORCHESTRATOR_TOKEN",
    ):
        return 2
    from mcp_server import logs

    logs.configure(settings.log_level, settings.log_format)
    from orchestrator.main import run_orchestrator

    return await run_orchestrator(settings, args.host, args.port)


async def _worker(_args: argparse.Namespace) -> int:
    from orchestrator.settings import OrchestratorSettings

    settings = _settings(OrchestratorSettings)
    if settings is None:
        return 2
    from mcp_server import logs

    logs.configure(settings.log_level, settings.log_format)
    from orchestrator.main import run_worker

    return await run_worker(settings)


async def _serve(args: argparse.Namespace) -> int:
    from mcp_server.app import build_http_app, build_server
    from mcp_server.runtime import Runtime
    from mcp_server.settings import ServerSettings

    settings = _settings(ServerSettings)
    if settings is None:
        return 2
    allowed = args.allow_unauthenticated or settings.allow_unauthenticated
    if args.transport == "http" and _refuse_exposed(
        args.host, settings.mcp_token, allowed, "SHIELD_MCP_TOKEN"
    ):
        return 2
    from mcp_server import logs

    logs.configure(settings.log_level, settings.log_format)
    runtime = Runtime(settings)
    unavailable: str | None = None
    try:
        runtime.start()  # fail now, not at the first tool call, if the data dir is taken
    except KnowledgeError as exc:
        print(f"shield-mcp: {exc}", file=sys.stderr)
        if args.transport != "stdio":
            return 2
        # A stdio client (Claude Desktop) would only say "Connection closed": serve, and
        # answer every call with the reason instead.
        unavailable = f"{exc} Restart this server once that is fixed."
    mcp = build_server(settings, runtime, unavailable=unavailable)
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
        return 0 if unavailable is None else 2
    import uvicorn

    config = uvicorn.Config(
        build_http_app(mcp, settings, runtime),
        host=args.host,
        port=args.port,
        log_config=None,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    await server.serve()
    return 0 if server.started else 1


async def _repair(args: argparse.Namespace) -> int:
    from knowledge.settings import KnowledgeSettings
    from knowledge.vectorstore.edge_repair import repair_collections

    settings = _settings(KnowledgeSettings)
    if settings is None:
        return 2
    if settings.qdrant_url:
        print("shield-mcp: repair works on the embedded store; unset SHIELD_QDRANT_URL.")
        return 2
    try:
        reports = await asyncio.to_thread(repair_collections, settings.data_dir, args.collections)
    except KnowledgeError as exc:
        print(f"shield-mcp: {exc}", file=sys.stderr)
        return 2
    for report in reports:
        state = "repaired" if report.changed else "ok"
        print(f"{report.collection}: {state}, {report.points} passages")
        for pid, source in report.removed.items():
            print(
                f"  removed unreadable passage {pid} (source {source or 'unknown'}): store it again"
            )
        for pid in report.clipped:
            print(f"  clipped metadata nested deeper than the engine keeps: {pid}")
        if report.kept_copy is not None:
            print(f"  it did not load and was rebuilt; the original is kept at {report.kept_copy}")
    return 0


_COMMANDS = {
    "serve": _serve,
    "orchestrator": _orchestrator,
    "worker": _worker,
    "repair": _repair,
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return asyncio.run(_COMMANDS[args.command](args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
