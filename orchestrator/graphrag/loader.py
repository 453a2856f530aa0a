"""Importing LightRAG safely: no `.env` or `config.ini` of the working directory, no pip.

Three traps in ``lightrag-hku`` itself (1.5.7):

- ``lightrag/base.py`` (and ``llm/openai.py``) run ``load_dotenv(".env")`` at import, so a
  ``.env`` in whatever directory the process was started from would set its variables in
  our process: workspace and storage settings among them, and the query defaults LightRAG
  reads from the environment while its modules load. We import with ``load_dotenv``
  disabled and put the environment back exactly as it was.
- Its PostgreSQL and Redis backends read ``config.ini`` from the working directory, and a
  ``workspace`` there (or ``POSTGRES_WORKSPACE`` in the environment) silently replaces the
  workspace we give the constructor: the connection settings are ours instead
  (``postgres_config``), and the workspace variables are refused at start-up.
- Its backends install missing packages at run time through ``pipmaster``. Every package
  the backends we use need is declared in pyproject.toml; installing is disabled, so a
  missing one fails loudly instead of changing the environment of a running server.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

from knowledge.errors import KnowledgeError

# LightRAG's own variables that override the workspace given to its constructor.
WORKSPACE_VARIABLES = (
    "WORKSPACE",
    "POSTGRES_WORKSPACE",
    "REDIS_WORKSPACE",
    "QDRANT_WORKSPACE",
    "MONGODB_WORKSPACE",
    "MILVUS_WORKSPACE",
    "MEMGRAPH_WORKSPACE",
    "NEO4J_WORKSPACE",
    "OPENSEARCH_WORKSPACE",
)
# The modules of the backends this project uses, imported once under the guard.
_MODULES = (
    "lightrag",
    "lightrag.base",
    "lightrag.utils",
    "lightrag.lightrag",
    "lightrag.operate",
    "lightrag.kg.shared_storage",
    "lightrag.kg.json_kv_impl",
    "lightrag.kg.json_doc_status_impl",
    "lightrag.kg.nano_vector_db_impl",
    "lightrag.kg.networkx_impl",
)
_POSTGRES_MODULES = ("lightrag.kg.postgres_impl", "lightrag.kg.pgtable_impl")

_lock = threading.Lock()
_loaded: set[str] = set()


class LightRAGConfigError(KnowledgeError):
    """The process's environment would make LightRAG ignore our settings."""

    code = "invalid_configuration"


class RuntimeInstallRefused(RuntimeError):
    """LightRAG tried to pip-install a package while the server runs."""


def check_environment(environ: Mapping[str, str]) -> None:
    """Refuse LightRAG's workspace variables: they would override the collection's."""
    found = [name for name in WORKSPACE_VARIABLES if environ.get(name, "").strip()]
    if found:
        raise LightRAGConfigError(
            f"{', '.join(found)} {'is' if len(found) == 1 else 'are'} set: LightRAG would use "
            "that workspace for every collection instead of one per collection. Unset "
            f"{'it' if len(found) == 1 else 'them'}; shield-mcp names each workspace after "
            "its collection."
        )


def _refuse_install(*args: Any, **kwargs: Any) -> bool:
    raise RuntimeInstallRefused(
        f"LightRAG tried to install {args or kwargs} at run time; shield-mcp declares every "
        "package it needs (pip install 'shield-mcp[orchestrator]'), so this one is missing "
        "from the install."
    )


def _disable_pipmaster() -> None:
    import pipmaster

    for name in ("install", "install_multiple", "install_if_missing", "ensure_packages"):
        if hasattr(pipmaster, name):
            setattr(pipmaster, name, _refuse_install)


def _restore(snapshot: Mapping[str, str]) -> None:
    for name in set(os.environ) - set(snapshot):
        del os.environ[name]
    for name, value in snapshot.items():
        if os.environ.get(name) != value:
            os.environ[name] = value


class _TableProbeNoise(logging.Filter):
    """LightRAG's PostgreSQL backend logs ERROR for each table it looks for before creating
    it on first start ('relation "lightrag_…" does not exist'): not an error for anyone."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("does not exist" in message and 'relation "lightrag_' in message)


def _route_logs() -> None:
    # LightRAG logs every pipeline step at INFO to stderr through a handler of its own, in
    # its own format: its warnings and errors go through ours instead (SHIELD_LOG_FORMAT,
    # request ids), and the steps our job results and metrics already report stay out.
    for name in ("lightrag", "nano-vectordb"):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True
        logger.setLevel(logging.WARNING)
        if not any(isinstance(f, _TableProbeNoise) for f in logger.filters):
            logger.addFilter(_TableProbeNoise())


def load_lightrag(*, postgres: bool = False) -> None:
    """Import LightRAG (and its PostgreSQL backends) with the traps above disarmed.

    Idempotent and thread-safe; call it before any ``import lightrag`` elsewhere.
    """
    wanted = _MODULES + (_POSTGRES_MODULES if postgres else ())
    with _lock:
        if all(name in _loaded for name in wanted):
            return
        import importlib

        import dotenv

        _disable_pipmaster()
        snapshot = dict(os.environ)
        original = dotenv.load_dotenv
        dotenv.load_dotenv = lambda *a, **k: False
        try:
            for name in wanted:
                importlib.import_module(name)
                _loaded.add(name)
        finally:
            dotenv.load_dotenv = original
            _restore(snapshot)
        _route_logs()
