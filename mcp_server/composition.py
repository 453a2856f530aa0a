"""The MCP server's composition root: where its settings become objects.

``compose_server`` is the one place: the knowledge handle, the orchestrator link (to a
remote orchestrator, or to one hosted here), the FastMCP server and its HTTP app. It is
also the only place the server reaches into the ``orchestrator`` package, to host the
embedded orchestrator; that import happens in the background, after start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from fastmcp import FastMCP
from starlette.types import ASGIApp

from knowledge.errors import InvalidInput, KnowledgeError
from knowledge.health import embedder_probe, known_message, probe_policy, vector_store_probe
from knowledge.service import KnowledgeService
from knowledge.settings import KnowledgeSettings
from knowledge.wiring import knowledge_handle, make_breaker, missing_modules
from mcp_server.app import build_http_app, build_server
from mcp_server.orchestrator_link import Connect, Connection, OrchestratorLink
from mcp_server.parts import ServerParts
from mcp_server.settings import ServerSettings
from shield_common.probes import DependencyProbe, Prober
from shield_common.process import load_settings

if TYPE_CHECKING:
    import httpx

    from orchestrator.settings import OrchestratorSettings
    from orchestrator_client.client import OrchestratorClient

# What the in-process orchestrator imports; checked without importing (start-up stays light).
ORCHESTRATOR_MODULES = ("fastapi", "sqlalchemy", "aiosqlite", "taskiq", "docling", "crawl4ai")
EMBEDDED_BASE_URL = "http://orchestrator.embedded"


@dataclass
class ComposedServer:
    mcp: FastMCP
    parts: ServerParts
    http_app: Callable[[], ASGIApp]  # the streamable-HTTP app with the server's guards


def compose_server(
    settings: ServerSettings,
    hosted: OrchestratorSettings | None = None,
    *,
    unavailable: str | None = None,
) -> ComposedServer:
    """The server from its settings; ``hosted``: the orchestrator's settings, when this
    process runs the orchestrator (no SHIELD_ORCHESTRATOR_URL). ``unavailable``: serve a
    server that answers every call with that message (see build_server)."""
    if settings.orchestrator_url is None:
        if hosted is None:
            raise ValueError("a server without SHIELD_ORCHESTRATOR_URL hosts the orchestrator")
        # One process, one knowledge configuration: the server's, whatever `hosted` says.
        shared = {name: getattr(settings, name) for name in KnowledgeSettings.model_fields}
        hosted = hosted.model_copy(update=shared)
        link = OrchestratorLink(_hosting(settings, hosted), embedded=True)
        parts = ServerParts(knowledge_handle(settings), link)
    else:
        link = OrchestratorLink(_remote(settings), embedded=False)
        parts = ServerParts(knowledge_handle(settings), link)
        parts.probes = _probes(settings, parts)
    mcp = build_server(parts, max_limit=settings.max_limit, unavailable=unavailable)
    token = settings.mcp_token.get_secret_value() if settings.mcp_token is not None else None

    def http_app() -> ASGIApp:
        """The streamable-HTTP app; InvalidInput when its request cap cannot carry the
        uploads this process accepts (stdio has no such cap)."""
        if hosted is not None and settings.orchestrator_url is None:
            _check_upload_fits(settings, hosted)
        return build_http_app(
            mcp,
            parts,
            token=token,
            max_request_bytes=settings.max_request_bytes,
            allow_unauthenticated=settings.allow_unauthenticated,
        )

    return ComposedServer(mcp, parts, http_app)


def hosted_settings(settings: ServerSettings) -> OrchestratorSettings | Literal[False] | None:
    """The hosted orchestrator's settings (None with a remote one; False, said why, if bad)."""
    if settings.orchestrator_url is not None:
        return None
    from orchestrator.settings import OrchestratorSettings  # light: pydantic only

    return load_settings(OrchestratorSettings) or False


def _check_upload_fits(settings: ServerSettings, hosted: OrchestratorSettings) -> None:
    from orchestrator.settings import upload_request_bytes  # light: pydantic only

    need = upload_request_bytes(hosted.max_upload_bytes)
    if settings.max_request_bytes < need:
        raise InvalidInput(
            f"SHIELD_MAX_REQUEST_BYTES ({settings.max_request_bytes}) cannot carry one upload "
            f"of SHIELD_MAX_UPLOAD_BYTES ({hosted.max_upload_bytes} bytes, {need} as base64 "
            "in a request); raise it or lower SHIELD_MAX_UPLOAD_BYTES."
        )


def _client(
    settings: ServerSettings,
    base_url: str,
    transport: httpx.AsyncBaseTransport | None = None,
    misanswer_hint: str = "check SHIELD_ORCHESTRATOR_URL",
) -> OrchestratorClient:
    from orchestrator_client.client import OrchestratorClient

    token = settings.orchestrator_token
    return OrchestratorClient(
        base_url,
        token=token.get_secret_value() if token else None,
        timeout=settings.orchestrator_timeout,
        query_timeout=settings.lightrag_query_timeout,
        breaker=make_breaker(settings, "orchestrator"),
        transport=transport,
        misanswer_hint=misanswer_hint,
    )


def _remote(settings: ServerSettings) -> Connect:
    async def connect(_service: KnowledgeService) -> Connection:
        assert settings.orchestrator_url is not None
        return Connection(_client(settings, settings.orchestrator_url))

    return connect


def _probes(settings: ServerSettings, parts: ServerParts) -> Prober:
    """What a server with a remote orchestrator depends on: the orchestrator, and its own
    vector store and embedder (qdrant_store and qdrant_find use them directly)."""
    policy = probe_policy(settings)

    async def orchestrator_answers() -> None:
        client = await parts.orchestrator.client()
        await client.probe()

    orchestrator = DependencyProbe(
        "orchestrator",
        orchestrator_answers,
        hint="SHIELD_ORCHESTRATOR_URL and that the orchestrator runs",
        policy=policy,
        describe=known_message,
    )
    store_hint = "SHIELD_QDRANT_URL" if settings.qdrant_url else "SHIELD_DATA_DIR"
    return Prober(
        [
            orchestrator,
            vector_store_probe(parts.service, policy, hint=store_hint),
            embedder_probe(settings, policy),
        ],
        policy,
    )


def _import_orchestrator() -> None:
    for module in ("orchestrator.composition", "orchestrator_client.client"):
        importlib.import_module(module)


def _hosting(settings: ServerSettings, hosted: OrchestratorSettings) -> Connect:
    """Starts the orchestrator in this process, on the server's own knowledge service (one
    handle per data dir), and reaches its API through an ASGI transport: the same routes,
    models, error mapping and breaker as a remote orchestrator."""

    async def connect(service: KnowledgeService) -> Connection:
        missing = missing_modules(ORCHESTRATOR_MODULES)
        if missing:
            raise KnowledgeError(
                "crawl_web and ingest_doc need the orchestrator, which is not installed "
                f"here (missing {', '.join(missing)}). Install 'shield-mcp[orchestrator]', "
                "or set SHIELD_ORCHESTRATOR_URL to a running orchestrator."
            )
        # The imports take a while (SQLAlchemy, taskiq, FastAPI): keep them off the event
        # loop so that the first tools/list is not held up.
        await asyncio.to_thread(_import_orchestrator)
        import httpx

        from orchestrator.composition import compose_orchestrator

        orchestrator = compose_orchestrator(hosted, service=service)
        try:
            await orchestrator.runtime.start()
        except BaseException:
            # Half-started (say the job store opened, the queue did not): close what opened.
            with contextlib.suppress(Exception):
                await orchestrator.runtime.stop()
            raise
        client = _client(
            settings,
            EMBEDDED_BASE_URL,
            httpx.ASGITransport(app=orchestrator.app),
            "this is a bug in the in-process orchestrator; the server log may say more",
        )
        return Connection(
            client,
            app=orchestrator.app,
            stop=orchestrator.runtime.stop,
            refresh_metrics=orchestrator.runtime.jobs.refresh_gauges,
        )

    return connect
