"""Dependency health, actively probed: one probe per dependency, run on the event loop.

A probe calls a cheap check of its dependency every interval and keeps a state with
hysteresis: the first result decides it, then it turns down only after ``failures_down``
failures in a row and up again only after ``successes_up`` successes in a row, so one lost
packet neither pages anyone nor takes a process out of rotation. The state is what
``/ready`` answers and what the ``dependency_up{dependency}`` gauge exports (read at scrape
time from the probes of running probers; none until a probe's first result).

Checks raise to say "down". What a failure says (``reason``) is shown in ``/ready`` and the
log: ``describe`` turns the exceptions a caller knows into their own (credential-free)
message; anything else is reduced to its type name and the settings to check, since a
driver's message may quote a URL with its password.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

log = logging.getLogger("shield.probes")

# The label values of dependency_up: a fixed set, never anything a request supplies.
DEPENDENCIES = frozenset({"orchestrator", "vector_store", "embedder", "llm", "queue", "job_store"})
UP = "ok"

Check = Callable[[], Awaitable[object]]
Describe = Callable[[Exception], "str | None"]


def readiness_answer(components: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """The ``/ready`` answer every process gives (orchestrator, worker, MCP server): 200
    ready, or 503 with an error naming each component that is not up."""
    broken = {name: state for name, state in components.items() if state != UP}
    if not broken:
        return 200, {"status": "ready", "components": components, "error": None}
    message = "Not ready: " + "; ".join(f"{name}: {state}" for name, state in broken.items())
    error = {"code": "not_ready", "message": message}
    return 503, {"status": "not_ready", "components": components, "error": error}


@dataclass(frozen=True)
class ProbePolicy:
    interval: float = 15.0
    failures_down: int = 3
    successes_up: int = 2
    timeout: float = 5.0


def _nothing_known(_exc: Exception) -> str | None:
    return None


class DependencyProbe:
    """One dependency's check and its state (None until the first result)."""

    def __init__(
        self,
        name: str,
        check: Check,
        *,
        hint: str,
        policy: ProbePolicy,
        describe: Describe = _nothing_known,
        required: bool = True,
        close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        if name not in DEPENDENCIES:
            raise ValueError(f"unknown dependency {name!r}; one of {sorted(DEPENDENCIES)}")
        self.name = name
        self._check = check
        self.hint = hint
        self.policy = policy
        self._describe = describe
        # Required: /ready fails while it is down. Not: exported and logged only (an LLM
        # that degrades LightRAG's answers is no reason to take the API out of rotation).
        self.required = required
        self._close = close
        self.up: bool | None = None
        self.reason = "not probed yet"
        self.failures = 0  # in a row
        self.successes = 0  # in a row
        self._known = asyncio.Event()

    async def try_once(self) -> str:
        """Runs the check once: ``"ok"`` or what is wrong. Changes no state."""
        try:
            await asyncio.wait_for(self._check(), self.policy.timeout)
        except TimeoutError:
            return f"no answer within {self.policy.timeout:g} s; check {self.hint}"
        except Exception as exc:
            known = self._describe(exc)
            return known if known else f"unreachable ({type(exc).__name__}); check {self.hint}"
        return UP

    async def probe(self) -> bool | None:
        """One check, recorded; the state after it."""
        result = await self.try_once()
        self.record(result == UP, result)
        return self.up

    def record(self, ok: bool, reason: str = UP) -> None:
        """Counts one result and turns the state when a threshold is reached."""
        if ok:
            self.successes += 1
            self.failures = 0
        else:
            self.failures += 1
            self.successes = 0
            self.reason = reason
            log.debug("probe of %s failed (%d in a row): %s", self.name, self.failures, reason)
        if self.up is None:
            self._turn(ok)
        elif ok and not self.up and self.successes >= self.policy.successes_up:
            self._turn(True)
        elif not ok and self.up and self.failures >= self.policy.failures_down:
            self._turn(False)

    def _turn(self, up: bool) -> None:
        self.up = up
        self._known.set()
        if up:
            self.reason = UP
            log.info("dependency %s is up", self.name)
        else:
            log.warning("dependency %s is down: %s", self.name, self.reason)

    @property
    def status(self) -> str:
        """``"ok"`` while up (even after a failure or two), else what is wrong."""
        return UP if self.up else self.reason

    async def known(self) -> None:
        """Returns once the first result is in."""
        await self._known.wait()

    async def aclose(self) -> None:
        if self._close is not None:
            await self._close()


class Prober:
    """Runs its probes every ``policy.interval`` on the event loop, all at once.

    The first round starts at once, so readiness is known within one timeout of the start.
    Rounds do not overlap: the next waits for the slowest check of the last (each bounded
    by ``policy.timeout``).
    """

    def __init__(self, probes: Iterable[DependencyProbe], policy: ProbePolicy) -> None:
        self.probes = list(probes)
        self.policy = policy
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Needs a running event loop; a second start does nothing."""
        if self._task is not None:
            return
        for probe in self.probes:
            _exported[probe.name] = probe
        self._task = asyncio.get_running_loop().create_task(self._run(), name="shield-probes")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for probe in self.probes:
            if _exported.get(probe.name) is probe:
                del _exported[probe.name]
            try:
                await probe.aclose()
            except Exception:
                log.exception("closing the %s probe failed", probe.name)

    async def run_once(self) -> None:
        """One round: every probe checked once, at the same time."""
        await asyncio.gather(*(probe.probe() for probe in self.probes))

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:  # a probe records its own failures; this is a bug
                log.exception("a dependency probe round failed")
            await asyncio.sleep(self.policy.interval)

    async def readiness(self) -> dict[str, str]:
        """Required dependency -> "ok" or what is wrong: the probes' states while running,
        a check made now otherwise (a process that has not started its probes)."""
        required = [probe for probe in self.probes if probe.required]
        if not self.running:
            results = await asyncio.gather(*(probe.try_once() for probe in required))
            return {probe.name: result for probe, result in zip(required, results, strict=True)}
        # Right after start the first round may still run: wait for it (a check is
        # bounded by the timeout; what is still unknown then says so).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.policy.timeout + 1.0):
                await asyncio.gather(*(probe.known() for probe in required))
        return {probe.name: probe.status for probe in required}


# dependency -> the probe of a running prober that reports it (the last one started).
_exported: dict[str, DependencyProbe] = {}


class _ProbeCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "dependency_up",
            "Whether a dependency answers its periodic probe (1 up, 0 down), with hysteresis: "
            "down after SHIELD_PROBE_FAILURES_DOWN failures in a row, up again after "
            "SHIELD_PROBE_SUCCESSES_UP successes.",
            labels=["dependency"],
        )
        for name, probe in sorted(_exported.items()):
            if probe.up is not None:
                gauge.add_metric([name], 1.0 if probe.up else 0.0)
        yield gauge


REGISTRY.register(_ProbeCollector())
