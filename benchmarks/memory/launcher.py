"""``shield-mcp serve`` with a counter of embedded texts and, on request, the old embedder.

    python -m benchmarks.memory.launcher serve --transport http --host 127.0.0.1 --port N

The server is this checkout's (``shield_mcp.cli.main``). Two additions, both in this
process only:

- ``bench_embedded_texts_total`` in ``/metrics``: texts the local model embedded, so the
  run can show that a second store of the same chunks really ran the model again;
- with ``BENCH_MEMORY_EMBEDDER=legacy`` the local model runs as it did before its memory
  was bounded: onnxruntime's memory pattern on (its default) and batches cut by count
  alone (``batch_size``, no token budget). That is the "today's code" server of the same run,
  so its throughput and the bounded one's are measured under the same load.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

EMBEDDER_ENV = "BENCH_MEMORY_EMBEDDER"
EMBEDDED_METRIC = "bench_embedded_texts_total"
UNBOUNDED = 1 << 30  # a token budget no batch reaches


def install_counter() -> None:
    from prometheus_client import Counter

    from knowledge.embeddings.local import LocalEmbedder

    embedded = Counter(EMBEDDED_METRIC.removesuffix("_total"), "Texts the local model embedded")
    original = LocalEmbedder.embed_documents

    async def embed_documents(self: LocalEmbedder, texts: Sequence[str]) -> Any:
        embedded.inc(len(texts))
        return await original(self, texts)

    LocalEmbedder.embed_documents = embed_documents  # type: ignore[method-assign]


def use_legacy_embedder() -> None:
    """onnxruntime's memory pattern on (its default) and batches cut by count alone, as
    before issue 9. Must run before the model loads (it is loaded on first use)."""
    from knowledge.embeddings import local

    original_init = local.LocalEmbedder.__init__

    def init(self: local.LocalEmbedder, **kwargs: Any) -> None:
        original_init(self, **kwargs)
        self.max_batch_tokens = UNBOUNDED

    local.LocalEmbedder.__init__ = init  # type: ignore[method-assign]
    local.MEMORY_PATTERN = True


def main(argv: list[str] | None = None) -> int:
    install_counter()
    if os.environ.get(EMBEDDER_ENV) == "legacy":
        use_legacy_embedder()
    from shield_mcp.cli import main as shield_main

    return shield_main(argv)


def parse_counter(text: str) -> float | None:
    """``bench_embedded_texts_total`` from a ``/metrics`` page."""
    for line in text.splitlines():
        if line.startswith(EMBEDDED_METRIC + " "):
            return float(line.rpartition(" ")[2])
    return None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
