"""From settings to ``GraphConfig``: which storage, which vectors, which LLM, or a refusal.

Called by the composition root only. A configuration LightRAG would silently get wrong
(a workspace variable overriding the collection's) never starts. Local files are safe with
several processes because each process owns its data dir (knowledge/datadir.py); they are
then per process, as the embedded vector store is.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from sqlalchemy.engine import make_url

from orchestrator.graphrag.config import DEFAULT_LLM_MODELS, GraphConfig, LLMConfig, PostgresConfig
from orchestrator.graphrag.loader import LightRAGConfigError, check_environment
from orchestrator.settings import OrchestratorSettings


def _postgres(url: str) -> PostgresConfig:
    parsed = make_url(url)
    return PostgresConfig(
        host=parsed.host or "localhost",
        port=parsed.port or 5432,
        user=parsed.username or "postgres",
        password=parsed.password,
        database=parsed.database or "postgres",
        ssl_mode=str(parsed.query.get("sslmode")) if parsed.query.get("sslmode") else None,
    )


def _llm(settings: OrchestratorSettings) -> LLMConfig | None:
    if settings.llm == "none":
        return None
    key = settings.openai_api_key
    return LLMConfig(
        kind=settings.llm,
        model=settings.llm_model or DEFAULT_LLM_MODELS[settings.llm],
        url=settings.ollama_host if settings.llm == "ollama" else settings.openai_base_url,
        api_key=key.get_secret_value() if key is not None and settings.llm == "openai" else None,
        timeout=settings.llm_timeout,
        max_concurrency=settings.llm_max_concurrency,
    )


def graph_config(
    settings: OrchestratorSettings, environ: Mapping[str, str] | None = None
) -> GraphConfig | None:
    """None when LightRAG is off; LightRAGConfigError for a setup it would get wrong."""
    if not settings.lightrag:
        return None
    check_environment(os.environ if environ is None else environ)
    database = settings.database_url
    on_postgres = (
        database is not None
        and make_url(settings.job_database_url).get_backend_name() == "postgresql"
    )
    storage = settings.lightrag_storage
    if storage == "auto":
        storage = "postgres" if on_postgres else "local"
    if storage == "postgres" and not on_postgres:
        raise LightRAGConfigError(
            "SHIELD_LIGHTRAG_STORAGE=postgres needs SHIELD_DATABASE_URL=postgresql://…: "
            "LightRAG's tables go in the job database."
        )
    vectors = settings.lightrag_vectors
    return GraphConfig(
        working_dir=settings.data_dir / "lightrag",
        postgres=_postgres(database) if storage == "postgres" and database else None,
        vectors=vectors,
        llm=_llm(settings),
        registry_url=settings.job_database_url,
    )


def query_unavailable(settings: OrchestratorSettings, runs_workers: bool) -> str | None:
    """Why this process cannot answer LightRAG queries, or None when it can."""
    if not settings.lightrag:
        return (
            "LightRAG is off on this server (SHIELD_LIGHTRAG=false); turn it on to build and "
            "query its graph."
        )
    if not runs_workers and settings.qdrant_url is None:
        return (
            "This orchestrator runs no workers and has no shared vector store, so it cannot "
            "read the vectors LightRAG keeps: set SHIELD_QDRANT_URL (the Qdrant server the "
            "workers use) on the orchestrator and the workers."
        )
    return None
