"""The README's configuration table covers every setting the server reads (its own and,
since it runs the orchestrator by default, the orchestrator's)."""

from __future__ import annotations

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
