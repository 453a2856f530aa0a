"""The LLM LightRAG asks for entities, relations, keywords and answers.

Ollama (``POST /api/chat``) or any OpenAI-compatible endpoint (``POST /chat/completions``:
OpenAI, a LiteLLM proxy, vLLM), behind the ``llm`` circuit breaker. LightRAG swallows
some LLM failures (an insert marks its document failed, a query returns nothing), so the
client also counts its failures: the service compares the count around a call to tell
"the LLM failed" from "nothing matched".
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from knowledge.breakers import Breaker, DependencyFailure
from knowledge.embeddings.openai_compat import error_text
from knowledge.errors import DependencyRejected
from knowledge.redact import safe_url
from orchestrator.graphrag.config import LLMConfig

CONFIGURE_HINT = (
    "Set SHIELD_LLM=ollama (with SHIELD_OLLAMA_HOST) or SHIELD_LLM=openai (with "
    "SHIELD_OPENAI_BASE_URL and SHIELD_OPENAI_API_KEY, e.g. a LiteLLM proxy), and "
    "SHIELD_LLM_MODEL."
)


class ChatLLM:
    def __init__(self, config: LLMConfig, breaker: Breaker) -> None:
        self.config = config
        self.breaker = breaker
        self.failures = 0
        self.last_failure: str | None = None
        self.where = safe_url(config.url)
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self._client = httpx.AsyncClient(
            base_url=config.url.rstrip("/"), headers=headers, timeout=config.timeout
        )
        self._slots = asyncio.Semaphore(config.max_concurrency)

    @property
    def name(self) -> str:
        return f"{self.config.kind} model {self.config.model!r} at {self.where}"

    async def complete(
        self,
        prompt: str,
        system_prompt: str | None = None,
        history_messages: list[dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> str:
        """LightRAG's ``llm_model_func``: one prompt in, the reply's text out."""
        messages: list[dict[str, Any]] = []
        if system_prompt:
            messages.append({"role": "system", "content": system_prompt})
        messages.extend(history_messages or [])
        messages.append({"role": "user", "content": prompt})
        wants_json = bool(kwargs.get("keyword_extraction")) or (
            isinstance(kwargs.get("response_format"), dict)
            and kwargs["response_format"].get("type") == "json_object"
        )
        try:
            async with self._slots:
                return await self.breaker.call(self._chat, messages, wants_json)
        except Exception as exc:
            self.failures += 1
            self.last_failure = str(exc)
            raise

    async def _chat(self, messages: list[dict[str, Any]], wants_json: bool) -> str:
        if self.config.kind == "ollama":
            path = "/api/chat"
            body: dict[str, Any] = {"model": self.config.model, "messages": messages}
            body["stream"] = False
            if wants_json:
                body["format"] = "json"
        else:
            path = "/chat/completions"
            body = {"model": self.config.model, "messages": messages}
            if wants_json:
                body["response_format"] = {"type": "json_object"}
        try:
            response = await self._client.post(path, json=body)
        except httpx.TimeoutException as exc:
            raise DependencyFailure(
                f"The LLM ({self.name}) did not answer within {self.config.timeout:.0f} s "
                "(SHIELD_LLM_TIMEOUT)."
            ) from exc
        except httpx.TransportError as exc:
            raise DependencyFailure(
                f"The LLM ({self.name}) is not reachable ({type(exc).__name__}). Start it, or "
                f"fix the URL. {CONFIGURE_HINT}"
            ) from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise DependencyFailure(
                f"The LLM ({self.name}) failed (HTTP {response.status_code}): "
                f"{error_text(response)}"
            )
        if response.status_code >= 400:
            raise DependencyRejected(
                f"The LLM ({self.name}) refused the request (HTTP {response.status_code}): "
                f"{error_text(response)}. Check SHIELD_LLM_MODEL and the API key."
            )
        return self._content(response)

    def _content(self, response: httpx.Response) -> str:
        try:
            body = response.json()
            if self.config.kind == "ollama":
                content = body["message"]["content"]
            else:
                content = body["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise DependencyRejected(
                f"The LLM ({self.name}) answered in an unexpected format ({exc!r:.200}); check "
                "that the URL points at an Ollama or OpenAI-compatible server."
            ) from exc
        if not isinstance(content, str):
            raise DependencyRejected(f"The LLM ({self.name}) answered without text.")
        return content

    async def aclose(self) -> None:
        await self._client.aclose()
