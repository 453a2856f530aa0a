"""LightRAG's metrics: operations by outcome, and how long they take."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import Counter, Histogram

OPERATIONS = Counter(
    "lightrag_operations_total",
    "LightRAG operations (insert, delete, query_<mode>; a rebuild counts as inserts) by outcome.",
    ["operation", "status"],
)
DURATION = Histogram(
    "lightrag_operation_duration_seconds",
    "Time per LightRAG operation.",
    ["operation"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)


@dataclass
class Outcome:
    status: str = "ok"


@contextlib.contextmanager
def timed(operation: str) -> Iterator[Outcome]:
    """Count and time one operation; an exception counts as ``error``."""
    outcome = Outcome()
    start = time.perf_counter()
    try:
        yield outcome
    except BaseException:
        outcome.status = "error"
        raise
    finally:
        DURATION.labels(operation).observe(time.perf_counter() - start)
        OPERATIONS.labels(operation, outcome.status).inc()


def declare_operations(operations: list[str]) -> None:
    """Create every series at zero: Prometheus misses the first increment of a new series."""
    for operation in operations:
        DURATION.labels(operation)
        for status in ("ok", "error"):
            OPERATIONS.labels(operation, status)
