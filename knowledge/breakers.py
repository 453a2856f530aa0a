"""Circuit breakers around dependency calls, and their state for Prometheus.

Uses the ``circuitbreaker`` package for the state machine. Only failures that say the
dependency is unwell (connection errors, timeouts, 5xx) count towards opening a breaker;
a request the dependency rejects (4xx) does not, because retrying later will not fix it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

from circuitbreaker import STATE_CLOSED, STATE_HALF_OPEN, STATE_OPEN, CircuitBreaker
from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

from knowledge.errors import DependencyUnavailable

T = TypeVar("T")

_STATE_VALUE = {STATE_CLOSED: 0.0, STATE_OPEN: 1.0, STATE_HALF_OPEN: 2.0}

# The state gauge says a breaker is open; this says how many callers it turned away meanwhile
# (the calls that failed and opened it are the dependency's errors, not counted here).
REJECTIONS = Counter(
    "circuit_breaker_rejections_total",
    "Calls refused without contacting the dependency because its circuit breaker was open.",
    ["breaker"],
)


class DependencyFailure(Exception):
    """Raised inside a breaker-guarded call when the dependency itself failed."""


class _CircuitBreaker(CircuitBreaker):  # type: ignore[misc]
    """The library's breaker, except that a cancelled call is no verdict on the dependency.

    The library resets (closes) the breaker after any exception that is not a failure,
    including ``asyncio.CancelledError``: a client that gives up on a hanging dependency
    would then keep the breaker from ever opening, and a cancelled trial call would close a
    half-open breaker without a single success.
    """

    def __exit__(self, exc_type: type[BaseException] | None, exc: Any, tb: Any) -> bool:
        if exc_type is not None and not issubclass(exc_type, Exception):
            return False
        return bool(super().__exit__(exc_type, exc, tb))


class Breaker:
    """One named breaker; ``await breaker.call(fn, ...)`` fails fast while open."""

    def __init__(self, name: str, *, failure_threshold: int = 5, recovery_seconds: float = 60.0):
        self.name = name
        self._cb = _CircuitBreaker(
            failure_threshold=failure_threshold,
            recovery_timeout=recovery_seconds,
            expected_exception=DependencyFailure,
            name=name,
        )
        _registry[name] = self
        REJECTIONS.labels(name)  # the series exists at zero before the first refusal

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half_open`` (open turns half-open once recovery is due)."""
        return str(self._cb.state)

    @property
    def retry_after(self) -> float:
        return max(0.0, float(self._cb.open_remaining))

    async def call(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        if self._cb.opened:
            REJECTIONS.labels(self.name).inc()
            raise DependencyUnavailable(
                f"{self.name} is unavailable: its circuit breaker is open after "
                f"{self._cb.failure_count} consecutive failures "
                f"(last: {self._cb.last_failure}). Retry in {self.retry_after:.0f} s.",
                retry_after=self.retry_after,
            )
        try:
            result: T = await self._cb.call_async(fn, *args, **kwargs)
        except DependencyFailure as exc:
            retry_after = self.retry_after if self._cb.opened else None
            message = str(exc)
            if retry_after is not None:
                message += f" The circuit breaker is now open; retry in {retry_after:.0f} s."
            raise DependencyUnavailable(message, retry_after=retry_after) from exc
        return result


_registry: dict[str, Breaker] = {}


def breakers() -> Iterator[Breaker]:
    return iter(list(_registry.values()))


class _BreakerCollector(Collector):
    """Reads breaker states at scrape time, so an open breaker turns half-open on time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "circuit_breaker_state",
            "Circuit breaker state per dependency: 0 closed, 1 open, 2 half-open.",
            labels=["breaker"],
        )
        for breaker in breakers():
            gauge.add_metric([breaker.name], _STATE_VALUE.get(breaker.state, 0.0))
        yield gauge


REGISTRY.register(_BreakerCollector())
