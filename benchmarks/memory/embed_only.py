"""A process that only embeds: what the model alone holds, without server or vector store.

    python -m benchmarks.memory.embed_only --chunks 2000 --embedder bounded|legacy

Embeds the suite's mixed chunks with shield's ``LocalEmbedder`` (``legacy``: as patched by
the launcher), ``--batch`` texts per ``embed_documents`` call as the store calls send them,
and prints one JSON line: RSS after loading the model, after the chunks, and the peak.
Beside the server's figures, the difference is the server's and the vector store's share.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

from benchmarks.memory.launcher import use_legacy_embedder
from benchmarks.memory.spec import MIB, status_kib
from benchmarks.memory.texts import mixed_chunks


async def _embed(texts: list[str], batch: int) -> dict[str, float]:
    from knowledge.embeddings.local import LocalEmbedder

    embedder = LocalEmbedder()
    await embedder.embed_documents(texts[:1])
    loaded = status_kib(os.getpid(), "VmRSS") / MIB
    start = time.perf_counter()
    for n in range(0, len(texts), batch):
        await embedder.embed_documents(texts[n : n + batch])
    seconds = time.perf_counter() - start
    await embedder.aclose()
    return {
        "chunks": len(texts),
        "chunks_per_s": len(texts) / seconds,
        "rss_loaded_mib": loaded,
        "rss_after_mib": status_kib(os.getpid(), "VmRSS") / MIB,
        "peak_mib": status_kib(os.getpid(), "VmHWM") / MIB,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.memory.embed_only")
    p.add_argument("--chunks", type=int, default=2000)
    p.add_argument("--embedder", choices=("bounded", "legacy"), default="bounded")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seed", type=int, default=20261123)
    args = p.parse_args(argv)
    if args.embedder == "legacy":
        use_legacy_embedder()
    texts = [d.text for d in mixed_chunks(args.chunks, args.seed)]
    print(json.dumps(asyncio.run(_embed(texts, args.batch))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
