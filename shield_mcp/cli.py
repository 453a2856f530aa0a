"""The ``shield-mcp`` command: parses the command line and hands each subcommand to the
entry point of the package it belongs to. Nothing is imported before it is needed, so
`shield-mcp serve` starts with the MCP server's imports only."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shield-mcp", description="An MCP server for a knowledge base you fill and query."
    )
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


def _serve(args: argparse.Namespace) -> Awaitable[int]:
    from mcp_server.main import serve

    return serve(args.transport, args.host, args.port, args.allow_unauthenticated)


def _orchestrator(args: argparse.Namespace) -> Awaitable[int]:
    from orchestrator.main import orchestrator_command

    return orchestrator_command(args.host, args.port, args.allow_unauthenticated)


def _worker(_args: argparse.Namespace) -> Awaitable[int]:
    from orchestrator.main import worker_command

    return worker_command()


def _repair(args: argparse.Namespace) -> Awaitable[int]:
    from knowledge.maintenance import repair_command

    return repair_command(args.collections)


_COMMANDS: dict[str, Callable[[argparse.Namespace], Awaitable[int]]] = {
    "serve": _serve,
    "orchestrator": _orchestrator,
    "worker": _worker,
    "repair": _repair,
}


async def _run(args: argparse.Namespace) -> int:
    return await _COMMANDS[args.command](args)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return asyncio.run(_run(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
