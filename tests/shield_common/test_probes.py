"""Dependency probes: hysteresis, timeouts, what a failure says, the gauge, the prober.

The probes are driven one check at a time (``probe()`` / ``run_once()``), never by waiting
for the prober's interval: each assertion follows a known number of results.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Iterable

import pytest
from prometheus_client import REGISTRY

from shield_common.probes import UP, DependencyProbe, ProbePolicy, Prober

HINT = "SHIELD_QUEUE_URL and that Redis is running"
# The prober's own loop never runs a second round in these tests.
POLICY = ProbePolicy(interval=3600.0, failures_down=3, successes_up=2, timeout=5.0)


class Down(Exception):
    pass


class Switch:
    """A dependency the test turns on and off; counts the checks it answered."""

    def __init__(self, up: bool = True) -> None:
        self.up = up
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1
        if not self.up:
            raise Down("connection refused")


class Scripted:
    """Answers with the given outcomes in order: True = success, else the exception."""

    def __init__(self, outcomes: Iterable[bool | Exception]) -> None:
        self.outcomes = deque(outcomes)

    async def __call__(self) -> None:
        outcome = self.outcomes.popleft()
        if outcome is not True:
            assert isinstance(outcome, Exception)
            raise outcome


def gauge(dependency: str) -> float | None:
    return REGISTRY.get_sample_value("dependency_up", {"dependency": dependency})


async def results(probe: DependencyProbe, n: int) -> bool | None:
    state = None
    for _ in range(n):
        state = await probe.probe()
    return state


async def test_the_first_result_decides_the_initial_state() -> None:
    up = DependencyProbe("queue", Switch(up=True), hint=HINT, policy=POLICY)
    down = DependencyProbe("queue", Switch(up=False), hint=HINT, policy=POLICY)
    assert up.up is None and down.up is None
    assert await up.probe() is True
    assert await down.probe() is False
    assert down.status == f"unreachable (Down); check {HINT}"


async def test_one_failure_does_not_flip_up_to_down_three_do() -> None:
    switch = Switch()
    probe = DependencyProbe("queue", switch, hint=HINT, policy=POLICY)
    assert await probe.probe() is True
    switch.up = False
    assert await probe.probe() is True
    assert probe.status == UP  # a blip is not reported
    assert await probe.probe() is True
    assert await probe.probe() is False  # the third in a row
    assert probe.status == f"unreachable (Down); check {HINT}"


async def test_two_successes_in_a_row_bring_it_back() -> None:
    switch = Switch(up=False)
    probe = DependencyProbe("queue", switch, hint=HINT, policy=POLICY)
    assert await probe.probe() is False
    switch.up = True
    assert await probe.probe() is False
    assert probe.status != UP
    assert await probe.probe() is True
    assert probe.status == UP


async def test_a_failure_between_successes_starts_the_count_again() -> None:
    outcomes: list[bool | Exception] = [Down("x"), True, Down("y"), True, Down("z"), True, True]
    probe = DependencyProbe("queue", Scripted(outcomes), hint=HINT, policy=POLICY)
    assert await results(probe, 6) is False
    assert await probe.probe() is True
    up_again: list[bool | Exception] = [True, Down("a"), Down("b"), True, Down("c"), Down("d")]
    probe = DependencyProbe("queue", Scripted(up_again), hint=HINT, policy=POLICY)
    assert await results(probe, 6) is True  # never three failures in a row


async def test_the_thresholds_come_from_the_policy() -> None:
    policy = ProbePolicy(interval=3600.0, failures_down=1, successes_up=1, timeout=5.0)
    switch = Switch()
    probe = DependencyProbe("queue", switch, hint=HINT, policy=policy)
    assert await probe.probe() is True
    switch.up = False
    assert await probe.probe() is False
    switch.up = True
    assert await probe.probe() is True


async def test_a_check_that_does_not_answer_fails_at_the_timeout() -> None:
    never = asyncio.Event()

    async def hangs() -> None:
        await never.wait()

    policy = ProbePolicy(interval=3600.0, timeout=0.05)
    probe = DependencyProbe("job_store", hangs, hint="SHIELD_DATABASE_URL", policy=policy)
    assert await probe.probe() is False
    assert probe.status == "no answer within 0.05 s; check SHIELD_DATABASE_URL"


async def test_known_errors_say_their_own_message_others_only_their_type(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "redis://admin:hunter2@10.0.0.5:6379/0"

    def describe(exc: Exception) -> str | None:
        return f"the queue says: {exc}" if isinstance(exc, LookupError) else None

    caplog.set_level(logging.DEBUG, logger="shield.probes")
    leaky = DependencyProbe(
        "queue", Scripted([Down(f"cannot connect to {secret}")]), hint=HINT, policy=POLICY
    )
    known = DependencyProbe(
        "queue",
        Scripted([LookupError("no such stream")]),
        hint=HINT,
        policy=POLICY,
        describe=describe,
    )
    await leaky.probe()
    await known.probe()
    assert leaky.status == f"unreachable (Down); check {HINT}"
    assert known.status == "the queue says: no such stream"
    assert "hunter2" not in caplog.text and "10.0.0.5" not in caplog.text


async def test_each_change_of_state_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="shield.probes")
    switch = Switch()
    probe = DependencyProbe("embedder", switch, hint="SHIELD_EMBEDDER", policy=POLICY)
    await probe.probe()
    switch.up = False
    await results(probe, 7)
    switch.up = True
    await results(probe, 5)
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "shield.probes"]
    assert lines == [
        ("INFO", "dependency embedder is up"),
        ("WARNING", "dependency embedder is down: unreachable (Down); check SHIELD_EMBEDDER"),
        ("INFO", "dependency embedder is up"),
    ]


def test_only_the_known_dependencies_are_labels() -> None:
    with pytest.raises(ValueError, match="unknown dependency"):
        DependencyProbe("http://example.com", Switch(), hint=HINT, policy=POLICY)


@pytest.fixture
async def started() -> AsyncIterator[tuple[Prober, Switch, Switch]]:
    queue, llm = Switch(), Switch()
    prober = Prober(
        [
            DependencyProbe("queue", queue, hint=HINT, policy=POLICY),
            DependencyProbe("llm", llm, hint="SHIELD_LLM", policy=POLICY, required=False),
        ],
        POLICY,
    )
    prober.start()
    try:
        yield prober, queue, llm
    finally:
        await prober.stop()


async def test_the_gauge_follows_the_probes_of_a_running_prober(
    started: tuple[Prober, Switch, Switch],
) -> None:
    prober, queue, _llm = started
    await prober.readiness()  # the first round, which start() began
    assert gauge("queue") == 1.0
    assert gauge("llm") == 1.0
    queue.up = False
    for _ in range(2):
        await prober.run_once()
    assert gauge("queue") == 1.0
    await prober.run_once()
    assert gauge("queue") == 0.0
    await prober.stop()
    assert gauge("queue") is None  # a stopped process claims nothing


async def test_readiness_is_the_required_probes_states_not_a_new_check(
    started: tuple[Prober, Switch, Switch],
) -> None:
    prober, queue, llm = started
    assert await prober.readiness() == {"queue": UP}  # the LLM is not required
    calls = queue.calls
    queue.up = False
    llm.up = False
    assert await prober.readiness() == {"queue": UP}
    assert queue.calls == calls  # answered from the state
    for _ in range(3):
        await prober.run_once()
    assert await prober.readiness() == {"queue": f"unreachable (Down); check {HINT}"}
    assert gauge("llm") == 0.0


async def test_readiness_checks_now_when_the_prober_is_not_running() -> None:
    queue = Switch(up=False)
    probe = DependencyProbe("queue", queue, hint=HINT, policy=POLICY)
    prober = Prober([probe], POLICY)
    assert await prober.readiness() == {"queue": f"unreachable (Down); check {HINT}"}
    assert queue.calls == 1
    assert probe.up is None  # a one-off check is no result of the probe


async def test_stop_does_not_wait_for_a_hanging_check_and_closes_the_checks() -> None:
    never = asyncio.Event()
    closed: list[str] = []

    async def hangs() -> None:
        await never.wait()

    async def close() -> None:
        closed.append("llm")

    policy = ProbePolicy(interval=3600.0, timeout=3600.0)
    prober = Prober(
        [DependencyProbe("llm", hangs, hint="SHIELD_LLM", policy=policy, close=close)], policy
    )
    prober.start()
    await asyncio.sleep(0)  # the first round is under way
    assert prober.running
    await prober.stop()
    assert not prober.running
    assert closed == ["llm"]
