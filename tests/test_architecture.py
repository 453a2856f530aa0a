"""The layout holds by itself: imports run one way, and modules stay small.

Dependency direction (docs/ARCHITECTURE.md draws it):

    shield_mcp  (the command: dispatches to each package's entry point)
        │
    mcp_server ──▶ orchestrator_client ──▶ knowledge
        ┆ composition root only           ▲
        ▼                                  │
    orchestrator ──▶ orchestrator_client (models, errors)
                 ──▶ knowledge

    shield_common: neutral plumbing every package may use; it uses none of them.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = (
    "knowledge",
    "orchestrator_client",
    "orchestrator",
    "mcp_server",
    "shield_common",
    "shield_mcp",
)
# package -> the project packages it may import (itself always).
ALLOWED: dict[str, set[str]] = {
    "shield_common": set(),
    "knowledge": {"shield_common"},
    "orchestrator_client": {"knowledge", "shield_common"},
    "orchestrator": {"orchestrator_client", "knowledge", "shield_common"},
    "mcp_server": {"orchestrator_client", "knowledge", "shield_common"},
    "shield_mcp": set(PACKAGES),
}
# From the client, the orchestrator takes only the contract: wire models and their errors.
CONTRACT = (
    "orchestrator_client.models",
    "orchestrator_client.graph_models",
    "orchestrator_client.errors",
)
# The one place the MCP server reaches into the orchestrator: hosting it in-process.
SERVER_HOSTS_ORCHESTRATOR = "mcp_server/composition.py"
# The domain knows nothing of MCP or HTTP serving.
DOMAIN = ("knowledge", "orchestrator/pipeline", "orchestrator/jobs")
SERVING = ("fastmcp", "mcp", "fastapi", "starlette")

MAX_LINES = 400
# Modules allowed past MAX_LINES, each with the reason it is one module.
LONGER: dict[str, str] = {}


def modules(*roots: str) -> Iterator[Path]:
    for root in roots:
        yield from sorted((REPO / root).rglob("*.py"))


def imported(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) of every import in the file, inside functions too."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            yield node.lineno, "." * node.level + (node.module or "")  # reported as relative
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.lineno, node.module
            for alias in node.names:  # "from orchestrator_client import client"
                yield node.lineno, f"{node.module}.{alias.name}"


def top(module: str) -> str:
    return module.split(".", 1)[0]


def violations() -> list[str]:
    found = []
    for package in PACKAGES:
        for path in modules(package):
            rel = path.relative_to(REPO).as_posix()
            for line, module in imported(path):
                target = top(module)
                if target not in PACKAGES or target == package:
                    continue
                where = f"{rel}:{line} imports {module}"
                if package == "mcp_server" and target == "orchestrator":
                    if rel != SERVER_HOSTS_ORCHESTRATOR:
                        found.append(f"{where} (only {SERVER_HOSTS_ORCHESTRATOR} may)")
                elif target not in ALLOWED[package]:
                    found.append(f"{where} ({package} may not import {target})")
                elif (
                    package == "orchestrator"
                    and target == "orchestrator_client"
                    and not module.startswith(CONTRACT)
                    and module != "orchestrator_client"
                ):
                    found.append(f"{where} (the orchestrator takes only {CONTRACT})")
    for path in modules(*PACKAGES, "benchmarks"):
        rel = path.relative_to(REPO).as_posix()
        for line, module in imported(path):
            if module.startswith("."):
                found.append(f"{rel}:{line} imports {module} (use absolute imports)")
    for path in modules("benchmarks"):
        rel = path.relative_to(REPO).as_posix()
        for line, module in imported(path):
            private = [p for p in module.split(".") if p.startswith("_") and p != "__future__"]
            if top(module) == "tests" or (top(module) in PACKAGES and private):
                found.append(f"{rel}:{line} imports {module} (benchmarks use public names)")
    for path in modules(*DOMAIN):
        rel = path.relative_to(REPO).as_posix()
        for line, module in imported(path):
            if top(module) in SERVING:
                found.append(f"{rel}:{line} imports {module} (the domain serves nothing)")
    return sorted(set(found))


def test_imports_run_one_way() -> None:
    assert violations() == []


def test_the_check_sees_a_violation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The walk is not vacuous: a planted import against the direction is reported."""
    fake = tmp_path / "knowledge"
    fake.mkdir()
    (fake / "bad.py").write_text("def f():\n    from mcp_server.app import build_server\n")
    (tmp_path / "orchestrator" / "jobs").mkdir(parents=True)
    (tmp_path / "orchestrator" / "jobs" / "web.py").write_text("import fastapi\n")
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "b.py").write_text(
        "from tests.sites import serve_site\nfrom orchestrator.pipeline.convert import _x\n"
        "from . import y\n"
    )
    monkeypatch.setattr(f"{__name__}.REPO", tmp_path)
    assert violations() == [
        "benchmarks/b.py:1 imports tests.sites (benchmarks use public names)",
        "benchmarks/b.py:1 imports tests.sites.serve_site (benchmarks use public names)",
        "benchmarks/b.py:2 imports orchestrator.pipeline.convert._x (benchmarks use public names)",
        "benchmarks/b.py:3 imports . (use absolute imports)",
        "knowledge/bad.py:2 imports mcp_server.app (knowledge may not import mcp_server)",
        "knowledge/bad.py:2 imports mcp_server.app.build_server "
        "(knowledge may not import mcp_server)",
        "orchestrator/jobs/web.py:1 imports fastapi (the domain serves nothing)",
    ]


def test_no_module_outgrows_the_cap() -> None:
    long = {}
    for path in modules(*PACKAGES, "benchmarks"):
        rel = path.relative_to(REPO).as_posix()
        lines = len(path.read_text().splitlines())
        if lines > MAX_LINES and rel not in LONGER:
            long[rel] = lines
    assert long == {}, f"split these by responsibility (or name them in LONGER): {long}"
    assert all((REPO / rel).exists() for rel in LONGER), "LONGER names a module that is gone"
