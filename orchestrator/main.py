"""Entry points of `shield-mcp orchestrator` and `shield-mcp worker` (the CLI calls these)."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from knowledge.errors import KnowledgeError
from orchestrator.runtime import OrchestratorRuntime
from orchestrator.settings import OrchestratorSettings

log = logging.getLogger(__name__)


def _fail(message: str) -> int:
    print(f"shield-mcp: {message}", file=sys.stderr)
    return 2


async def run_worker(settings: OrchestratorSettings) -> int:
    """Run jobs from SHIELD_QUEUE_URL until SIGTERM/SIGINT, then stop gracefully."""
    if settings.queue_url is None:
        return _fail(
            "a worker takes jobs from a shared queue: set SHIELD_QUEUE_URL=redis://host:6379 "
            "(the same as the orchestrator's). Without it, `shield-mcp orchestrator` or "
            "`shield-mcp serve` run the jobs in their own process."
        )
    # SHIELD_QUEUE_URL without SHIELD_DATABASE_URL is refused by the settings themselves.
    runtime = OrchestratorRuntime(settings, run_workers=True)
    try:
        await runtime.start()
    except KnowledgeError as exc:  # runtime.StartFailed too: one line naming what failed
        return _fail(str(exc))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker ready; SIGTERM or Ctrl-C stops it gracefully")
    try:
        await stop.wait()
        log.info("stopping: running jobs get %.0f s to finish", settings.shutdown_grace_seconds)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await runtime.stop()
    return 0


async def run_orchestrator(settings: OrchestratorSettings, host: str, port: int) -> int:
    """The job API on host:port; runs the workers too unless SHIELD_QUEUE_URL is set."""
    import uvicorn

    from orchestrator.http.app import build_app

    runtime = OrchestratorRuntime(settings)
    try:
        await runtime.start()
    except KnowledgeError as exc:  # runtime.StartFailed too: one line naming what failed
        return _fail(str(exc))
    try:
        app = build_app(runtime, settings)
        config = uvicorn.Config(app, host=host, port=port, log_config=None, lifespan="on")
        server = uvicorn.Server(config)
        await server.serve()  # returns on SIGTERM/SIGINT
    finally:
        await runtime.stop()
    return 0
