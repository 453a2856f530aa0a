"""Every setting of the MCP server process: environment variables with the SHIELD_ prefix.

The knowledge settings plus the server's own. When the server hosts the orchestrator
(no SHIELD_ORCHESTRATOR_URL), its composition root also reads the orchestrator's
settings; a server pointed at a remote orchestrator needs none of them.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from knowledge.settings import DEFAULT_MODELS, KnowledgeSettings

__all__ = ["DEFAULT_MODELS", "ServerSettings"]


class ServerSettings(KnowledgeSettings):
    orchestrator_url: str | None = Field(
        None, description="A separate orchestrator; unset = run it inside this process."
    )
    orchestrator_timeout: float = Field(10.0, gt=0, description="Seconds per orchestrator call.")
    lightrag_query_timeout: float = Field(
        300.0, gt=0, description="Seconds for lightrag_query (an LLM may write the answer)."
    )
    orchestrator_token: SecretStr | None = Field(
        None, description="Bearer token of a separate orchestrator's HTTP API."
    )
    max_request_bytes: int = Field(64 * 1024 * 1024, ge=1024, description="HTTP body cap.")

    mcp_token: SecretStr | None = None
    allow_unauthenticated: bool = Field(
        False, description="Allow binding a non-loopback address with no SHIELD_MCP_TOKEN."
    )

    @field_validator("mcp_token", "orchestrator_token", mode="before")
    @classmethod
    def _blank_secret_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("orchestrator_url", mode="before")
    @classmethod
    def _blank_orchestrator_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value
