"""Every setting of an orchestrator or worker process: SHIELD_ environment variables.

Light on purpose (pydantic only): the MCP server reads these too, at start-up.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import NoDecode

from knowledge.settings import KnowledgeSettings

DATABASE_SCHEMES = (
    "postgresql://",
    "postgres://",
    "postgresql+asyncpg://",
    "sqlite+aiosqlite:///",
    "sqlite:///",
)
QUEUE_SCHEMES = ("redis://", "rediss://", "unix://")
# Base64 grows content by 4/3; the rest of a JSON request (metadata, names) gets the slack.
REQUEST_SLACK_BYTES = 256 * 1024


def upload_request_bytes(max_upload_bytes: int) -> int:
    """The largest request body that carries one upload of ``max_upload_bytes``."""
    return max_upload_bytes * 4 // 3 + REQUEST_SLACK_BYTES


class OrchestratorSettings(KnowledgeSettings):
    # Where jobs live and how they travel.
    database_url: str | None = Field(
        None, description="postgresql://... for a shared job store; unset = SQLite in data_dir."
    )
    queue_url: str | None = Field(
        None, description="redis://... for separate worker processes; unset = in-process queue."
    )
    queue_name: str = Field(
        "shield-jobs",
        min_length=1,
        max_length=200,
        description="Redis stream of the job queue; one per deployment sharing a Redis.",
    )
    orchestrator_token: SecretStr | None = Field(
        None, description="Bearer token required by the orchestrator's HTTP API when set."
    )

    # What ingest_doc may read.
    ingest_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="os.pathsep-separated directories ingest_doc may read; empty = no paths.",
    )
    max_document_bytes: int = Field(50 * 1024 * 1024, ge=1, description="Per document.")
    max_upload_bytes: int = Field(
        20 * 1024 * 1024, ge=1, description="Decoded content_base64 per request."
    )
    convert_timeout: float = Field(300.0, gt=0, description="Seconds per document conversion.")
    convert_max_memory_mb: int = Field(
        4096,
        ge=256,
        description="MiB the converter process may use beyond what it needs to start; a "
        "document needing more fails its job and the converter is restarted.",
    )
    convert_max_pages: int = Field(
        10_000, ge=1, description="Pages per PDF; a longer one fails its job at once."
    )

    # Crawling.
    crawl_allow_private: bool = Field(
        False, description="Allow loopback, private, link-local and metadata addresses."
    )
    crawl_mode: Literal["http", "browser"] = "http"
    crawl_browser_cdp_url: str | None = Field(
        None, description="Chrome DevTools endpoint of a running Chromium (browser mode)."
    )
    crawl_browser_path: Path | None = Field(
        None, description="Chromium executable to launch (browser mode), e.g. /usr/bin/chromium."
    )
    crawl_max_pages: int = Field(500, ge=1, description="Cap on any request's max_pages.")
    crawl_page_timeout: float = Field(20.0, gt=0, description="Seconds per page.")
    fetch_timeout: float = Field(60.0, gt=0, description="Seconds to download a document.")

    # Chunking (tokens of the embedding model's tokenizer).
    chunk_max_tokens: int = Field(256, ge=16, le=8192)

    # Workers.
    worker_concurrency: int = Field(2, ge=1, le=64, description="Jobs one worker runs at once.")
    job_timeout: float = Field(3600.0, gt=0, description="Seconds one attempt of a job may run.")
    max_attempts: int = Field(3, ge=1, le=20, description="Tries per job (transient failures).")
    retry_backoff_seconds: float = Field(
        2.0, ge=0, description="First retry waits half to all of this (jitter); doubles."
    )
    lease_seconds: float = Field(
        30.0, gt=0, description="A running job whose worker is silent this long is re-queued."
    )
    shutdown_grace_seconds: float = Field(
        30.0, ge=0, description="On stop, how long in-flight jobs may finish before re-queueing."
    )
    max_wait_seconds: float = Field(60.0, ge=0, description="Cap on GET /jobs/{id}?wait=N.")
    metrics_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Port of a worker's own GET /metrics and /health; unset = none served.",
    )
    metrics_host: str = Field(
        "127.0.0.1",
        min_length=1,
        description="Address a worker's metrics port binds; a non-loopback one needs "
        "SHIELD_ORCHESTRATOR_TOKEN.",
    )
    background_nice: int = Field(
        10,
        ge=0,
        le=19,
        description="CPU nice value of job work (worker processes, the docling child, the "
        "embedder's job thread), so accepting and answering come first; 0 = not lowered.",
    )

    # LightRAG: a graph and vector index of every collection, fed by ingestion jobs.
    lightrag: bool = Field(True, description="Feed LightRAG and answer lightrag_query.")
    lightrag_storage: Literal["auto", "local", "postgres"] = Field(
        "auto",
        description="Where LightRAG keeps documents, status and graph: files in data_dir, or "
        "PostgreSQL (SHIELD_DATABASE_URL); auto = PostgreSQL when the job store is.",
    )
    lightrag_vectors: Literal["nano", "store"] = Field(
        "store",
        description="LightRAG's vectors: the project's vector store (qdrant-edge, or the "
        "Qdrant server), or LightRAG's NanoVectorDB files (measured slower as they grow).",
    )
    llm: Literal["none", "ollama", "openai"] = Field(
        "none", description="LLM for entity extraction and answers; none = retrieval only."
    )
    llm_model: str | None = Field(None, description="Default: qwen2.5:7b / gpt-4o-mini.")
    llm_timeout: float = Field(120.0, gt=0, description="Seconds per LLM call.")
    llm_max_concurrency: int = Field(4, ge=1, le=64, description="LLM calls at once.")

    @field_validator("ingest_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: object) -> object:
        if isinstance(value, str):
            return [Path(p).expanduser() for p in value.split(os.pathsep) if p.strip()]
        return value

    @field_validator("database_url", "queue_url", "crawl_browser_cdp_url", mode="before")
    @classmethod
    def _blank_url_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str | None) -> str | None:
        if value is not None and not value.lower().startswith(DATABASE_SCHEMES):
            raise ValueError(
                "SHIELD_DATABASE_URL must be postgresql://user@host:5432/db (also postgres:// "
                "or postgresql+asyncpg://) or sqlite+aiosqlite:///path/jobs.sqlite3 (or "
                "sqlite:///path)"
            )
        return value

    # A field validator rather than a model validator so the error names SHIELD_QUEUE_URL;
    # database_url is declared first, so it is already in info.data (absent if it was bad).
    @field_validator("queue_url")
    @classmethod
    def _queue_needs_a_shared_store(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        if not value.lower().startswith(QUEUE_SCHEMES):
            raise ValueError(
                "SHIELD_QUEUE_URL must be a Redis URL: redis://host:6379/0, rediss://host:6380/0 "
                "(TLS) or unix:///path/redis.sock"
            )
        if "database_url" in info.data and info.data["database_url"] is None:
            raise ValueError(
                "SHIELD_QUEUE_URL needs SHIELD_DATABASE_URL: the orchestrator and its workers "
                "must share one job store (postgresql://…, or sqlite+aiosqlite:///path on one "
                "machine)"
            )
        return value

    @field_validator("llm_model", mode="before")
    @classmethod
    def _blank_model_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("orchestrator_token", mode="before")
    @classmethod
    def _blank_token_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def job_database_url(self) -> str:
        """The SQLAlchemy URL of the job store (async driver)."""
        if self.database_url is None:
            return f"sqlite+aiosqlite:///{self.data_dir / 'jobs.sqlite3'}"
        url = self.database_url
        for prefix, driver in (
            ("postgresql://", "postgresql+asyncpg://"),
            ("postgres://", "postgresql+asyncpg://"),
            ("sqlite:///", "sqlite+aiosqlite:///"),
        ):
            if url.lower().startswith(prefix):
                return driver + url[len(prefix) :]
        return url
