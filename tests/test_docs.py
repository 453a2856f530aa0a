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

    First column: paths in backticks; a name without a slash is beside the path before it
    (`mcp_server/tools.py`, `models.py`). Second column of a folder's row: the bare module
    names in backticks (`dispatch`, `config`) are modules or packages of that folder.
    """
    text = (REPO / "docs" / "ARCHITECTURE.md").read_text()
    table = text.split("## Packages and modules", 1)[1].split("\n## ", 1)[0]
    missing = []
    checked = 0
    for row in table.splitlines():
        if not row.startswith("| `"):
            continue
        first, second = row.split("|")[1:3]
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
            checked += 1
            if not target.exists():
                missing.append(token)
        folders = [t for t in re.findall(r"`([^`]+)`", first) if t.endswith("/")]
        if len(folders) == 1:
            for name in re.findall(r"`([a-z_]+)`", second):
                checked += 1
                folder = REPO / folders[0]
                if not ((folder / f"{name}.py").exists() or (folder / name).is_dir()):
                    missing.append(f"{folders[0]}{name}")
    assert missing == []
    assert checked > 80  # the table was read, not skipped
