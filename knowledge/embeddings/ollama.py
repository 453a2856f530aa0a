"""Embeddings from an Ollama server (``POST /api/embed``) through the ``ollama`` client."""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import ollama

from knowledge.breakers import Breaker, DependencyFailure
from knowledge.embeddings.base import Vector
from knowledge.embeddings.remote import RemoteEmbedder
from knowledge.errors import DependencyRejected
from knowledge.redact import safe_url


class OllamaEmbedder(RemoteEmbedder):
    provider = "ollama"

    def __init__(
        self,
        *,
        host: str,
        model: str,
        batch_size: int = 32,
        timeout: float = 60.0,
        breaker: Breaker | None = None,
    ) -> None:
        super().__init__(
            model=model,
            batch_size=batch_size,
            breaker=breaker or Breaker("ollama"),
        )
        self.host = safe_url(host)  # for messages; the client keeps the real URL
        self._client = ollama.AsyncClient(host=host, timeout=timeout)

    async def _embed_batch(self, texts: Sequence[str]) -> list[Vector]:
        try:
            response = await self._client.embed(model=self.model, input=list(texts))
        except ollama.ResponseError as exc:
            if exc.status_code == 404:
                raise DependencyRejected(
                    f"Ollama at {self.host} has no model {self.model!r} ({exc.error}). "
                    f"Run `ollama pull {self.model}` on that host, or set SHIELD_EMBED_MODEL "
                    "to a model it has."
                ) from exc
            if 400 <= exc.status_code < 500:
                raise DependencyRejected(
                    f"Ollama at {self.host} refused the embedding request: {exc.error}"
                ) from exc
            raise DependencyFailure(
                f"Ollama at {self.host} failed (HTTP {exc.status_code}): {exc.error}"
            ) from exc
        except (ConnectionError, httpx.TransportError) as exc:
            raise DependencyFailure(
                f"Ollama is not reachable at {self.host} ({type(exc).__name__}). Start it "
                "(`ollama serve`) or set SHIELD_OLLAMA_HOST to where it runs."
            ) from exc
        except (ValueError, TypeError) as exc:
            # A 200 whose body is not JSON (JSONDecodeError) or not an embed response
            # (pydantic's ValidationError is a ValueError; a non-object body is a TypeError).
            raise DependencyRejected(
                f"{self.host} did not answer in the Ollama /api/embed format ({exc!r:.300}); "
                "check that SHIELD_OLLAMA_HOST points at an Ollama server."
            ) from exc
        return [list(map(float, v)) for v in response.embeddings]

    async def aclose(self) -> None:
        await self._client._client.aclose()
