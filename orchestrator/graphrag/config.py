"""The values the LightRAG service works with, taken from settings by the composition root."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

DEFAULT_LLM_MODELS = {"ollama": "qwen2.5:7b", "openai": "gpt-4o-mini"}


@dataclass(frozen=True)
class LLMConfig:
    kind: Literal["ollama", "openai"]
    model: str
    url: str  # Ollama's host, or the OpenAI-compatible base URL (…/v1)
    api_key: str | None = None
    timeout: float = 120.0
    max_concurrency: int = 4


@dataclass(frozen=True)
class PostgresConfig:
    """LightRAG's PostgreSQL connection, from SHIELD_DATABASE_URL (never its env/config.ini)."""

    host: str
    port: int
    user: str
    password: str | None
    database: str
    ssl_mode: str | None = None


@dataclass(frozen=True)
class GraphConfig:
    # LightRAG's files (documents, status, graph, NanoVectorDB vectors) per workspace.
    working_dir: Path
    # Documents, status and graph: files, or PostgreSQL tables shared by every process.
    postgres: PostgresConfig | None = None
    # Vectors: NanoVectorDB files, or the project's vector store through an adapter.
    vectors: Literal["nano", "store"] = "store"
    llm: LLMConfig | None = None
    # The job database: the registry of sources (what each LightRAG document is).
    registry_url: str = "sqlite+aiosqlite:///:memory:"
    # Sources indexed in one LightRAG pipeline run. LightRAG 1.5.7 still flushes its
    # storages once per document (measured); a batch saves the per-run set-up and keeps a
    # crawl's pending vectors bounded.
    batch_sources: int = 32
