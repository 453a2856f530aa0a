"""The corpus's vectors from the local model, computed once and cached in ``.bench/cache``.

The storage phase hands GraphService the vectors an ingestion job would have computed
(as the pipeline does), so its figures are LightRAG's and the store's, not the model's.
Chunk ``i`` of the corpus is the same whatever its size, so one cache file serves every
size: rows whose text hash matches are reused, the others embedded and appended.
"""

from __future__ import annotations

import hashlib
import time

import numpy as np

from benchmarks.harness import BENCH_DIR, log


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


async def _embed(texts: list[str]) -> np.ndarray:
    from knowledge.embeddings.local import LocalEmbedder

    embedder = LocalEmbedder(batch_size=16)
    try:
        rows = await embedder.embed_documents(texts)
    finally:
        await embedder.aclose()
    return np.asarray(rows, dtype=np.float32).reshape(len(texts), -1)


async def corpus_vectors(texts: list[str]) -> np.ndarray:
    """One row per text (the embedded default's model), from the cache where it has them."""
    hashes = [_hash(t) for t in texts]
    path = BENCH_DIR / "cache" / f"lightrag-vectors-{hashes[0] if hashes else 'none'}.npz"
    vectors = np.zeros((0, 0), dtype=np.float32)
    known: list[str] = []
    if path.exists():
        with np.load(path) as cached:
            vectors, known = cached["vectors"], [str(h) for h in cached["hashes"]]
    same = 0
    while same < min(len(known), len(hashes)) and known[same] == hashes[same]:
        same += 1
    if same >= len(texts):
        return vectors[: len(texts)]
    log(f"  embedding {len(texts) - same} chunks once (cached in {path.parent})")
    start = time.monotonic()
    fresh = await _embed(texts[same:])
    vectors = np.concatenate([vectors[:same], fresh]) if same else fresh
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, vectors=vectors, hashes=np.asarray(hashes))
    tmp.replace(path)
    log(f"  embedded in {time.monotonic() - start:.0f} s")
    return vectors
