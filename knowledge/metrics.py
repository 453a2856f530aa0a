"""Prometheus metrics of the embedders and vector stores, and who else wants the timings.

Every process that embeds or stores (the MCP server, the orchestrator, a worker) exports
them. Label values come from fixed sets: the provider and store kinds the code defines
and the operations named here, never collection names or texts.

A job's pipeline wants to know how much of its time went to embedding and to the store
(``job_stage_duration_seconds``); the pipeline sets ``timings`` for its task, and the
measured calls below report to it. Tasks started inside inherit it (context variables),
calls outside any job report to no one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Literal

from prometheus_client import Counter, Histogram

from knowledge.errors import CollectionMismatch, InvalidInput

EMBED_DURATION = Histogram(
    "embedding_duration_seconds",
    "Time per embedding call, by provider and purpose (query or document).",
    ["provider", "purpose"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
EMBED_BATCH = Histogram(
    "embedding_batch_size",
    "Texts per embedding call, by provider and purpose.",
    ["provider", "purpose"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
STORE_DURATION = Histogram(
    "vector_store_operation_duration_seconds",
    "Time per vector store operation, by store (edge or qdrant) and operation.",
    ["store", "operation"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
STORE_ERRORS = Counter(
    "vector_store_operation_errors_total",
    "Vector store operations that failed, by store and operation (a refused collection "
    "name or shape is the caller's error and not counted).",
    ["store", "operation"],
)

PROVIDERS = ("local", "ollama", "openai")
PURPOSES = ("query", "document")
STORES = ("edge", "qdrant")
# One per VectorStore method (knowledge/vectorstore/base.py); close is not measured.
OPERATIONS = (
    "ensure_collection",
    "collection_exists",
    "upsert",
    "search",
    "count",
    "stored_metadata",
    "update_metadata",
    "source_ids",
    "delete",
)

Purpose = Literal["query", "document"]
# ("embed" | "store", seconds): what a measured call reports to the task's listener.
Listener = Callable[[str, float], None]
timings: ContextVar[Listener | None] = ContextVar("shield_knowledge_timings", default=None)

# Refusals of the caller's request: the store answered as it should.
_CALLER_ERRORS = (InvalidInput, CollectionMismatch)


def _report(what: str, seconds: float) -> None:
    listener = timings.get()
    if listener is not None:
        listener(what, seconds)


@contextmanager
def embedding(provider: str, purpose: Purpose, texts: int) -> Iterator[None]:
    """Measure one embedding call of ``texts`` texts (failed calls too: they took time)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - start
        EMBED_DURATION.labels(provider, purpose).observe(elapsed)
        EMBED_BATCH.labels(provider, purpose).observe(texts)
        _report("embed", elapsed)


@contextmanager
def store_operation(store: str, operation: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    except _CALLER_ERRORS:
        raise
    except Exception:
        STORE_ERRORS.labels(store, operation).inc()
        raise
    finally:
        elapsed = time.perf_counter() - start
        STORE_DURATION.labels(store, operation).observe(elapsed)
        _report("store", elapsed)


def declare(provider: str, store: str) -> None:
    """Create this process's series at zero, so rate() and dashboards see them at once."""
    for purpose in PURPOSES:
        EMBED_DURATION.labels(provider, purpose)
        EMBED_BATCH.labels(provider, purpose)
    for operation in OPERATIONS:
        STORE_DURATION.labels(store, operation)
        STORE_ERRORS.labels(store, operation)
