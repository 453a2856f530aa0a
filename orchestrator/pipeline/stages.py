"""How long one attempt of a job spent in each pipeline stage (job_stage_duration_seconds).

fetch, convert, chunk and lightrag are timed where the pipeline runs them
(``clock.stage(...)``). Embedding and storing happen inside the knowledge service, which
reports its embedder's and store's time through ``knowledge.metrics.timings``: the clock
books it as embed and upsert ("upsert" is all of the store's time: the lookups of what is
stored, the writes, the removal of stale passages). Time inside an explicitly timed stage
belongs to that stage alone, so LightRAG's own embedding is not counted twice.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from knowledge import metrics as knowledge_metrics

_inside: ContextVar[str | None] = ContextVar("shield_job_stage", default=None)
_BOOKED_AS = {"embed": "embed", "store": "upsert"}


class StageClock:
    def __init__(self) -> None:
        self._seconds: dict[str, float] = {}

    def add(self, stage: str, seconds: float) -> None:
        self._seconds[stage] = self._seconds.get(stage, 0.0) + seconds

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        token = _inside.set(name)
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)
            _inside.reset(token)

    def _heard(self, what: str, seconds: float) -> None:
        if _inside.get() is None and what in _BOOKED_AS:
            self.add(_BOOKED_AS[what], seconds)

    @contextmanager
    def listening(self) -> Iterator[None]:
        """Book the knowledge service's embedding and store time in this task (and the
        tasks it starts) to this clock."""
        token = knowledge_metrics.timings.set(self._heard)
        try:
            yield
        finally:
            knowledge_metrics.timings.reset(token)

    def take(self) -> dict[str, float]:
        """The seconds per stage so far; the clock starts again from zero."""
        seconds, self._seconds = self._seconds, {}
        return seconds
