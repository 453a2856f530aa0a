"""The README's configuration table covers every setting the server reads."""

from __future__ import annotations

from mcp_server.settings import ServerSettings
from tests.support import REPO


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    missing = [
        f"SHIELD_{name.upper()}"
        for name in ServerSettings.model_fields
        if f"`SHIELD_{name.upper()}`" not in readme
    ]
    assert missing == []
