"""Every setting of the MCP server process: environment variables with the SHIELD_ prefix.

The server hosts the orchestrator in-process unless SHIELD_ORCHESTRATOR_URL is set, so its
settings are the orchestrator's plus its own.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from knowledge.settings import DEFAULT_MODELS
from orchestrator.settings import OrchestratorSettings, upload_request_bytes

__all__ = ["DEFAULT_MODELS", "ServerSettings"]


class ServerSettings(OrchestratorSettings):
    orchestrator_url: str | None = Field(
        None, description="A separate orchestrator; unset = run it inside this process."
    )
    orchestrator_timeout: float = Field(10.0, gt=0, description="Seconds per orchestrator call.")
    # Declared after orchestrator_url: its check reads whether this process hosts the jobs.
    max_request_bytes: int = Field(64 * 1024 * 1024, ge=1024, description="HTTP body cap.")

    mcp_token: SecretStr | None = None
    allow_unauthenticated: bool = Field(
        False, description="Allow binding a non-loopback address with no SHIELD_MCP_TOKEN."
    )

    @field_validator("max_request_bytes")
    @classmethod
    def _uploads_fit(cls, value: int, info: ValidationInfo) -> int:
        upload = info.data.get("max_upload_bytes")
        hosted = "orchestrator_url" in info.data and info.data["orchestrator_url"] is None
        if hosted and upload is not None and value < upload_request_bytes(upload):
            raise ValueError(
                f"{value} bytes cannot carry one upload of SHIELD_MAX_UPLOAD_BYTES ({upload} "
                f"bytes, {upload_request_bytes(upload)} as base64 in a request); raise it or "
                "lower SHIELD_MAX_UPLOAD_BYTES"
            )
        return value

    @field_validator("mcp_token", mode="before")
    @classmethod
    def _blank_secret_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("orchestrator_url", mode="before")
    @classmethod
    def _blank_orchestrator_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value
