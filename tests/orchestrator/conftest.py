"""Fixtures the orchestrator's tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.ollama_standin import OllamaStandIn, ollama_standin


@pytest.fixture
def standin() -> Iterator[OllamaStandIn]:
    """The LLM stand-in (HTTP boundary): no LLM can run here."""
    with ollama_standin() as llm:
        yield llm
