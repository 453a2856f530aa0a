"""Embeddings from any OpenAI-compatible ``/embeddings`` endpoint (OpenAI, LiteLLM, vLLM)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from knowledge.breakers import Breaker, DependencyFailure
from knowledge.embeddings.base import Vector
from knowledge.embeddings.remote import RemoteEmbedder
from knowledge.errors import DependencyRejected
from knowledge.redact import safe_url


def error_text(response: httpx.Response) -> str:
    """The error message of an OpenAI-style (or Ollama) error body, else its start."""
    try:
        body: Any = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return str(error.get("message", error))
        if error:
            return str(error)
    return str(body)[:300]


class OpenAIEmbedder(RemoteEmbedder):
    provider = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        batch_size: int = 64,
        timeout: float = 60.0,
        breaker: Breaker | None = None,
    ) -> None:
        super().__init__(
            model=model,
            batch_size=batch_size,
            breaker=breaker or Breaker("openai_embeddings"),
        )
        # base_url follows the OpenAI SDK convention and includes /v1.
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=timeout)

    async def _embed_batch(self, texts: Sequence[str]) -> list[Vector]:
        url = safe_url(f"{self.base_url}/embeddings")
        try:
            response = await self._client.post(
                "/embeddings", json={"model": self.model, "input": list(texts)}
            )
        except httpx.TransportError as exc:
            raise DependencyFailure(
                f"The embeddings endpoint {url} is not reachable ({type(exc).__name__}). "
                "Check SHIELD_OPENAI_BASE_URL."
            ) from exc
        if response.status_code in (401, 403):
            raise DependencyRejected(
                f"{url} refused the API key (HTTP {response.status_code}): "
                f"{error_text(response)}. Check SHIELD_OPENAI_API_KEY."
            )
        if response.status_code == 429 or response.status_code >= 500:
            raise DependencyFailure(
                f"{url} failed (HTTP {response.status_code}): {error_text(response)}"
            )
        if response.status_code >= 400:
            raise DependencyRejected(
                f"{url} refused the request for model {self.model!r} "
                f"(HTTP {response.status_code}): {error_text(response)}. "
                "Check SHIELD_EMBED_MODEL, and that each text fits the model's input limit."
            )
        try:
            data = sorted(response.json()["data"], key=lambda item: item["index"])
            return [[float(x) for x in item["embedding"]] for item in data]
        except (ValueError, KeyError, TypeError) as exc:
            raise DependencyRejected(
                f"{url} did not answer in the OpenAI embeddings format ({exc!r})."
            ) from exc

    async def aclose(self) -> None:
        await self._client.aclose()
