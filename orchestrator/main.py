"""Entry points of `shield-mcp orchestrator` and `shield-mcp worker`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from pydantic import SecretStr

from knowledge.errors import KnowledgeError
from orchestrator import metrics_server
from orchestrator.composition import compose_orchestrator
from orchestrator.settings import OrchestratorSettings
from shield_common import logs, priority
from shield_common.process import fail, load_settings, refuse_exposed

log = logging.getLogger(__name__)


async def worker_command() -> int:
    """Run jobs from SHIELD_QUEUE_URL until SIGTERM/SIGINT, then stop gracefully."""
    settings = load_settings(OrchestratorSettings)
    if settings is None:
        return 2
    if settings.queue_url is None:
        return fail(
            "a worker takes jobs from a shared queue: set SHIELD_QUEUE_URL=redis://host:6379 "
            "(the same as the orchestrator's). Without it, `shield-mcp orchestrator` or "
            "`shield-mcp serve` run the jobs in their own process."
        )
    token = _secret(settings.orchestrator_token)
    sock = None
    if settings.metrics_port is not None:
        refusal = metrics_server.exposure_refusal(settings.metrics_host, token)
        if refusal is not None:
            return fail(refusal)
        try:  # before the slow start: a taken port fails at once
            sock = metrics_server.bind(settings.metrics_host, settings.metrics_port)
        except OSError as exc:
            return fail(exc.strerror or str(exc))
    logs.configure(settings.log_level, settings.log_format)
    # A worker process does nothing but background work: all of it yields to the request
    # path (the orchestrator, the MCP server) sharing these cores.
    priority.lower_process_priority(settings.background_nice)
    # SHIELD_QUEUE_URL without SHIELD_DATABASE_URL is refused by the settings themselves.
    runtime = compose_orchestrator(settings, run_workers=True).runtime
    async with contextlib.AsyncExitStack() as stack:
        if sock is not None:
            # Up from before the start to after the stop: a scrape during the graceful
            # stop still sees the jobs that finished in it.
            readiness = metrics_server.worker_readiness(runtime)
            await stack.enter_async_context(metrics_server.serving(sock, token, readiness))
        try:
            await runtime.start()
        except KnowledgeError as exc:  # runtime.StartFailed too: one line naming what failed
            return fail(str(exc))
        stack.push_async_callback(runtime.stop)
        await _until_stopped(settings.shutdown_grace_seconds)
    return 0


async def _until_stopped(grace_seconds: float) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker ready; SIGTERM or Ctrl-C stops it gracefully")
    try:
        await stop.wait()
        log.info("stopping: running jobs get %.0f s to finish", grace_seconds)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


async def orchestrator_command(host: str, port: int, allow_unauthenticated: bool) -> int:
    """The job API on host:port; runs the workers too unless SHIELD_QUEUE_URL is set."""
    settings = load_settings(OrchestratorSettings)
    if settings is None:
        return 2
    token = settings.orchestrator_token
    if refuse_exposed(host, token, allow_unauthenticated, "SHIELD_ORCHESTRATOR_TOKEN"):
        return 2
    logs.configure(settings.log_level, settings.log_format)
    import uvicorn

    orchestrator = compose_orchestrator(settings)
    try:
        await orchestrator.runtime.start()
    except KnowledgeError as exc:  # runtime.StartFailed too: one line naming what failed
        return fail(str(exc))
    try:
        config = uvicorn.Config(
            orchestrator.app, host=host, port=port, log_config=None, lifespan="on"
        )
        server = uvicorn.Server(config)
        await server.serve()  # returns on SIGTERM/SIGINT
    finally:
        await orchestrator.runtime.stop()
    return 0
