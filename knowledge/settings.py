"""Settings of the knowledge layer (embedder, vector store, limits), shared by every process.

``OrchestratorSettings`` (the orchestrator, its workers, an orchestrator the MCP server
hosts) and ``ServerSettings`` (the MCP server) both extend it; a server that hosts the
orchestrator reads both, with one knowledge configuration (see mcp_server/composition.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from platformdirs import user_data_dir
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODELS = {
    "local": "all-MiniLM-L6-v2",
    "ollama": "nomic-embed-text",
    "openai": "text-embedding-3-small",
}


class KnowledgeSettings(BaseSettings):
    # hide_input_in_errors: a bad SHIELD_DATABASE_URL must not print its password.
    model_config = SettingsConfigDict(
        env_prefix="SHIELD_", extra="ignore", hide_input_in_errors=True
    )

    data_dir: Path = Field(
        default_factory=lambda: Path(user_data_dir("shield-mcp", appauthor=False)),
        description="Where the embedded store and the default job database live.",
    )
    collection: str = Field("shield", description="Collection used when a call names none.")

    embedder: Literal["local", "ollama", "openai"] = "local"
    embed_model: str | None = Field(None, description="Model name; default depends on embedder.")
    embed_batch_size: int = Field(16, ge=1, le=1024)
    embed_timeout: float = Field(60.0, gt=0)
    query_cache_size: int = Field(1024, ge=0)
    ollama_host: str = "http://127.0.0.1:11434"
    openai_base_url: str = "https://api.openai.com/v1"
    openai_api_key: SecretStr | None = None

    qdrant_url: str | None = Field(None, description="Qdrant server; unset = embedded store.")
    qdrant_api_key: SecretStr | None = None
    optimize_after: int = Field(5000, ge=1, description="New points before an index rebuild.")

    max_batch: int = Field(256, ge=1, le=10_000)
    max_text_chars: int = Field(100_000, ge=1)
    max_limit: int = Field(100, ge=1, le=1000)

    breaker_failure_threshold: int = Field(5, ge=1)
    breaker_recovery_seconds: float = Field(60.0, gt=0)

    # Dependency probes (shield_common/probes.py): dependency_up and /ready.
    probe_interval_seconds: float = Field(15.0, gt=0, description="Seconds between probes.")
    probe_failures_down: int = Field(
        3, ge=1, description="Failed probes in a row before a dependency counts as down."
    )
    probe_successes_up: int = Field(
        2, ge=1, description="Successful probes in a row before it counts as up again."
    )
    probe_timeout_seconds: float = Field(5.0, gt=0, description="Seconds per probe.")

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("embed_model", "qdrant_url", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("qdrant_api_key", "openai_api_key", mode="before")
    @classmethod
    def _blank_secret_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def model_name(self) -> str:
        if self.embedder == "local":  # one model ships with the package
            return DEFAULT_MODELS["local"]
        return self.embed_model or DEFAULT_MODELS[self.embedder]
