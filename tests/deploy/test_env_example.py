""".env.example: every setting of every process with its default and a comment, the
variables docker-compose.yml requires, and nothing else (like the README's table, kept
complete by a test)."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from pydantic_settings import BaseSettings

from tests.deploy.stack import (
    SETTINGS_CLASSES,
    EnvEntry,
    compose,
    compose_variables,
    env_example,
    environment,
    field_name,
    interpolations,
    services,
    setting_classes,
    shield_services,
    strings,
)
from tests.deploy.tools import REPO


def required_by_compose() -> set[str]:
    return {
        i.name for text in strings(compose()) for i in interpolations(text) if i.operator == ":?"
    }


def test_every_setting_is_listed_once_and_nothing_else() -> None:
    names = [entry.name for entry in env_example()]
    assert [n for n, count in Counter(names).items() if count > 1] == []
    settings = set(setting_classes())
    assert settings - set(names) == set(), "settings missing from .env.example"
    assert set(names) - settings - compose_variables() == set(), "neither setting nor compose's"
    assert len(settings) > 60  # the classes were read


def test_every_entry_has_a_one_line_comment() -> None:
    for entry in env_example():
        assert entry.comment, f"line {entry.line}: {entry.name} has no comment above it"


def test_what_compose_requires_is_there_to_fill_in_and_nothing_is_filled_in() -> None:
    """A copied .env names every variable compose stops without, and holds no secret."""
    uncommented = {entry.name: entry.value for entry in env_example() if not entry.commented}
    assert set(uncommented) == required_by_compose()
    assert {"POSTGRES_PASSWORD", "SHIELD_MCP_TOKEN", "SHIELD_ORCHESTRATOR_TOKEN"} <= set(
        uncommented
    )
    assert set(uncommented.values()) == {""}


def default_of(cls: type[BaseSettings], env: str) -> object:
    return getattr(cls(), field_name(cls, env))


SETTING_ENTRIES = [entry for entry in env_example() if entry.name in setting_classes()]


@pytest.mark.parametrize("entry", SETTING_ENTRIES, ids=lambda entry: entry.name)
def test_each_setting_shows_the_default_of_the_code(
    entry: EnvEntry, monkeypatch: pytest.MonkeyPatch
) -> None:
    cls = setting_classes()[entry.name]
    field = cls.model_fields[field_name(cls, entry.name)]
    default = default_of(cls, entry.name)
    if entry.value == "":
        # Empty = unset: the default is none, empty, or computed per machine (the data dir).
        assert default in (None, []) or field.default_factory is not None, entry.name
        return
    monkeypatch.setenv(entry.name, entry.value)
    assert getattr(cls(), field_name(cls, entry.name)) == default, entry.name


def pinned_by_compose() -> dict[str, set[str]]:
    """SHIELD_ variables compose gives a fixed value (not the shell's) -> the values."""
    out: dict[str, set[str]] = {}
    for name in shield_services():
        for variable, value in environment(services()[name]).items():
            if value is None or any(i.name == variable for i in interpolations(value)):
                continue
            out.setdefault(variable, set()).add(value)
    return out


def test_the_comments_say_what_compose_sets() -> None:
    pinned = pinned_by_compose()
    assert {"SHIELD_QDRANT_URL", "SHIELD_DATA_DIR", "SHIELD_QUEUE_URL"} <= set(pinned)
    for entry in env_example():
        says = "compose sets" in entry.comment
        assert says == (entry.name in pinned), f"line {entry.line}: {entry.name}"


def test_the_comments_give_compose_s_own_defaults() -> None:
    defaults = {
        i.name: i.argument
        for text in strings(services())
        for i in interpolations(text)
        if i.operator == ":-"
    }
    assert defaults, "compose gives the models defaults of its own"
    comments = {entry.name: entry.comment for entry in env_example()}
    for name, value in defaults.items():
        assert "compose" in comments[name] and value in comments[name], name


def test_the_settings_classes_are_all_read() -> None:
    """Every settings class the packages define is one the tests above walk."""
    packages = ("knowledge", "mcp_server", "orchestrator", "orchestrator_client", "shield_common")
    defined = {
        name
        for package in packages
        for path in (REPO / package).rglob("*.py")
        for name, bases in re.findall(r"^class (\w+)\(([^)]*)\)", path.read_text(), re.M)
        if "Settings" in bases
    }
    assert defined == {cls.__name__ for cls in SETTINGS_CLASSES} - {"BaseSettings"}
