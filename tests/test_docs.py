"""The README's configuration table covers every setting the server reads (its own and,
since it runs the orchestrator by default, the orchestrator's)."""

from __future__ import annotations

import re
from pathlib import Path

from mcp_server.settings import ServerSettings
from orchestrator.settings import OrchestratorSettings
from tests.support import REPO


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    missing = [
        f"SHIELD_{name.upper()}"
        for name in {*ServerSettings.model_fields, *OrchestratorSettings.model_fields}
        if f"`SHIELD_{name.upper()}`" not in readme
    ]
    assert missing == []


def test_every_module_in_the_architecture_table_exists() -> None:
    """docs/ARCHITECTURE.md's module table names files and folders that are there.

    A cell lists paths in backticks; a name without a slash is beside the path before it
    (`mcp_server/tools.py`, `models.py`), a bare word after a folder is a module in it.
    """
    text = (REPO / "docs" / "ARCHITECTURE.md").read_text()
    table = text.split("## Packages and modules", 1)[1].split("\n## ", 1)[0]
    missing = []
    for row in table.splitlines():
        if not row.startswith("| `"):
            continue
        first = row.split("|")[1]
        base: Path | None = None
        for token in re.findall(r"`([^`]+)`", first):
            path = token.split(":")[0].strip()
            if "/" in path:
                target = REPO / path
                base = target if target.is_dir() else target.parent
            elif base is not None:
                target = base / path
            else:
                continue
            if not target.exists():
                missing.append(token)
    assert missing == []
