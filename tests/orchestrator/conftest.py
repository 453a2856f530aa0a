"""Fixtures the orchestrator's tests share."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.ollama_standin import OllamaStandIn, ollama_standin
from tests.orchestrator.jobs.conftest import psql


@pytest.fixture
def standin() -> Iterator[OllamaStandIn]:
    """The LLM stand-in (HTTP boundary): no LLM can run here."""
    with ollama_standin() as llm:
        yield llm


def allow_connections(database: str, allowed: bool) -> None:
    """Open or close ``database`` to new connections: a job store outage, server still up."""
    psql(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS {str(allowed).lower()}')


@pytest.fixture
def database() -> Iterator[str]:
    """A PostgreSQL database of this test's own, which it may close to connections."""
    name = f"shield_db_{uuid.uuid4().hex[:10]}"
    psql(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        allow_connections(name, True)
        psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
