"""docs/CIRCUIT_BREAKER_GUIDE.md against the code: the breakers it lists are the ones the
code makes, its settings and defaults are the real ones, its gauge values are what a real
breaker exports in each state, and the messages it quotes are what a real breaker writes."""

from __future__ import annotations

import re

import pytest
from prometheus_client import REGISTRY

from knowledge import breakers as breakers_module
from knowledge.breakers import Breaker, DependencyFailure
from knowledge.errors import DependencyUnavailable
from knowledge.settings import KnowledgeSettings
from tests.support import REPO, BreakerClock

GUIDE = (REPO / "docs" / "CIRCUIT_BREAKER_GUIDE.md").read_text()
PACKAGES = ("knowledge", "mcp_server", "orchestrator", "orchestrator_client", "shield_common")


def _section(title: str) -> str:
    return GUIDE.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def _rows(section: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in row.strip("|").split("|")]
        for row in section.splitlines()
        if row.startswith("| ") and not row.startswith("|--")
    ]


def test_the_guide_lists_every_breaker_the_code_makes() -> None:
    made = set()
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            text = path.read_text()
            made |= set(re.findall(r'make_breaker\(\s*settings,\s*"([a-z_]+)"\)', text))
            made |= set(re.findall(r'Breaker\("([a-z_]+)"\)', text))
    listed = {
        m.group(1)
        for row in _rows(_section("Which calls sit behind which breaker"))
        if (m := re.fullmatch(r"`([a-z_]+)`", row[0]))
    }
    assert len(made) >= 5  # the code was read
    assert listed == made


def test_the_guide_gives_the_real_settings_and_defaults() -> None:
    rows = {
        row[0].strip("`"): row[1].strip("`")
        for row in _rows(_section("States, settings and the gauge"))
        if row[0].startswith("`SHIELD_")
    }
    fields = KnowledgeSettings.model_fields
    real = {
        "SHIELD_BREAKER_FAILURE_THRESHOLD": fields["breaker_failure_threshold"].default,
        "SHIELD_BREAKER_RECOVERY_SECONDS": fields["breaker_recovery_seconds"].default,
    }
    assert {name: float(value) for name, value in rows.items()} == {
        name: float(value) for name, value in real.items()
    }


def _gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value("circuit_breaker_state", {"breaker": name})


async def test_the_gauge_values_are_the_guides(
    breaker_clock: BreakerClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    documented = {
        row[0]: float(row[1].strip("`"))
        for row in _rows(_section("States, settings and the gauge"))
        if row[0] in ("closed", "open", "half-open")
    }
    monkeypatch.setattr(breakers_module, "_registry", dict(breakers_module._registry))
    breaker = Breaker("guide-gauge", failure_threshold=1, recovery_seconds=60)
    seen = {"closed": _gauge("guide-gauge")}

    async def failing() -> None:
        raise DependencyFailure("down")

    with pytest.raises(DependencyUnavailable):
        await breaker.call(failing)
    seen["open"] = _gauge("guide-gauge")
    breaker_clock.advance(61)
    seen["half-open"] = _gauge("guide-gauge")
    assert seen == documented


async def test_the_quoted_messages_are_what_a_breaker_writes(
    breaker_clock: BreakerClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each quoted block: the dependency's failure, the failure that opens the breaker
    (threshold 2), then a call while it is open (60 s of recovery left)."""
    # The guide's names are real breakers' names: keep this test's out of the registry.
    monkeypatch.setattr(breakers_module, "_registry", dict(breakers_module._registry))
    blocks = re.findall(r"```text\n(.*?)\n```", _section("What a client sees"), re.S)
    assert len(blocks) >= 2
    for block in blocks:
        first, opening, while_open = block.splitlines()
        name = while_open.split(" ", 1)[0]
        breaker = Breaker(name, failure_threshold=2, recovery_seconds=60)

        async def failing(message: str = first) -> None:
            raise DependencyFailure(message)

        said = []
        for _ in range(3):
            with pytest.raises(DependencyUnavailable) as caught:
                await breaker.call(failing)
            said.append(str(caught.value))
        assert said == [first, opening, while_open]
