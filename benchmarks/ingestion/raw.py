"""The embedder's raw rate on the ingested chunks: the ceiling for ingestion throughput.

``benchmarks/raw_model.py``'s int8 model (tokenizers + onnxruntime, no server, no store)
on the very chunk texts the naive script produced from the same inputs with the
pipeline's chunker.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import log
from benchmarks.raw_model import RawModel

RAW_BATCHES = (16, 64)  # 16 is the server's default embed batch


def raw_rates(scratch: Path, cfg: dict[str, Any], into: dict[str, Any]) -> None:
    """The model alone on the naive run's chunk texts (``scratch/chunks-{part}.json``);
    per batch size the best of this and earlier runs already in ``into``."""
    # onnxruntime's idle threads spinning or not (LocalEmbedder: not). On a busy 2-core
    # machine spinning threads fight the other work; on a quiet one spinning is a little
    # faster; the reference takes the better. The memory arena is off: with every batch a
    # new padded length it grows by gigabytes and the harness shares the machine.
    models = [RawModel(spin=spin, arena=False) for spin in (True, False)]
    for part in ("site", "docs"):
        path = scratch / f"chunks-{part}.json"
        if not path.exists():
            continue
        texts: list[str] = json.loads(path.read_text())
        step = max(1, len(texts) // cfg["raw_max_chunks"])
        # Sorted by length, as the server's embedder batches them: less padding, the
        # highest rate this model reaches on these texts.
        sample = sorted(texts[::step][: cfg["raw_max_chunks"]], key=len)
        budget = cfg["raw_budget_s"]
        rates = {
            str(b): max(_raw_rate(model, sample, b, budget) for model in models)
            for b in RAW_BATCHES
        }
        log(f"  raw model on {part} chunks: { {b: round(r, 1) for b, r in rates.items()} }")
        earlier = into.get(part, {})
        runs = [*earlier.get("runs", []), rates]
        best = {str(b): max(r[str(b)] for r in runs) for b in RAW_BATCHES}
        top = max(best, key=lambda b: best[b])
        into[part] = {
            "chunks": len(sample),
            "mean_chars": sum(map(len, sample)) / max(1, len(sample)),
            "by_batch": best,
            "best_batch": int(top),
            "chunks_per_s": best[top],
            "runs": runs,
        }


def _raw_rate(model: RawModel, texts: list[str], batch: int, budget_s: float) -> float:
    """Chunks per second over ``texts`` in order, stopping after ``budget_s`` (a busy
    machine can make the model crawl; the rate over what was done is still the rate)."""
    model.embed(texts[:batch])  # warm-up
    done = 0
    start = time.perf_counter()
    for i in range(0, len(texts), batch):
        model.embed(texts[i : i + batch])
        done += len(texts[i : i + batch])
        if time.perf_counter() - start > budget_s:
            break
    return done / (time.perf_counter() - start)
