"""LightRAG's import-time traps, disarmed: a hostile `.env`, workspace variables, pip.

Each check runs in a fresh interpreter: importing LightRAG is once per process, and what
it reads at import is the point.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest

from orchestrator.graphrag.loader import (
    WORKSPACE_VARIABLES,
    LightRAGConfigError,
    check_environment,
)
from orchestrator.graphrag.setup import graph_config
from orchestrator.settings import OrchestratorSettings

REPO = Path(__file__).resolve().parents[3]
HOSTILE_ENV = {
    "WORKSPACE": "evil",
    "POSTGRES_WORKSPACE": "evil",
    "POSTGRES_HOST": "evil.example",
    "TOP_K": "1",
    "CHUNK_TOP_K": "2",
    "OPENAI_API_KEY": "sk-leaked",
}
PROBE = """
import json, os, sys
{load}
from lightrag import QueryParam
from lightrag.lightrag import LightRAG
names = {names!r}
print(json.dumps({{
    "env": {{n: os.environ.get(n) for n in names}},
    "top_k": QueryParam().top_k,
    "chunk_top_k": QueryParam().chunk_top_k,
}}))
"""


def _probe(cwd: Path, guarded: bool) -> dict[str, object]:
    load = (
        "from orchestrator.graphrag.loader import load_lightrag; load_lightrag(postgres=True)"
        if guarded
        else ""
    )
    env = {k: v for k, v in os.environ.items() if k not in HOSTILE_ENV}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(load=load, names=sorted(HOSTILE_ENV))],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.slow  # fresh interpreters import LightRAG (`make test-fast` leaves it out)
def test_a_hostile_dotenv_in_the_working_directory_changes_nothing(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in HOSTILE_ENV.items()))
    # Without the guard, LightRAG's import reads it: this is the trap.
    leaked = _probe(tmp_path, guarded=False)
    assert leaked["env"] == HOSTILE_ENV
    assert leaked["top_k"] == 1
    guarded = _probe(tmp_path, guarded=True)
    assert guarded["env"] == dict.fromkeys(HOSTILE_ENV)
    assert guarded["top_k"] != 1 and guarded["chunk_top_k"] != 2


def test_lightrag_workspace_variables_are_refused_at_start() -> None:
    for name in WORKSPACE_VARIABLES:
        with pytest.raises(LightRAGConfigError, match=name):
            check_environment({name: "ops"})
    check_environment({"WORKSPACE": "  "})  # blank is unset
    settings = OrchestratorSettings(data_dir=Path("/tmp/unused"))
    with pytest.raises(LightRAGConfigError) as raised:
        graph_config(settings, environ={"POSTGRES_WORKSPACE": "x", "REDIS_WORKSPACE": "y"})
    message = str(raised.value)
    assert "POSTGRES_WORKSPACE" in message and "REDIS_WORKSPACE" in message
    assert "one per collection" in message


@pytest.mark.slow  # fresh interpreters import LightRAG (`make test-fast` leaves it out)
def test_nothing_is_pip_installed_at_run_time() -> None:
    """The backends we load ask pipmaster for packages at import; its installers are
    disabled first (one that ran would raise and fail the load), and stay disabled."""
    script = (
        "from orchestrator.graphrag.loader import load_lightrag\n"
        "load_lightrag(postgres=True)\n"
        "import pipmaster as pm\n"
        "from orchestrator.graphrag.loader import RuntimeInstallRefused\n"
        "try:\n"
        "    pm.install('left-pad')\n"
        "    refused = False\n"
        "except RuntimeInstallRefused:\n"
        "    refused = True\n"
        "print(refused)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "True"


def test_every_package_the_loaded_backends_ask_pipmaster_for_is_installed() -> None:
    spec = find_spec("lightrag")
    assert spec is not None and spec.origin is not None
    root = Path(spec.origin).parent
    modules = ["kg/postgres_impl.py", "kg/pgtable_impl.py", "kg/nano_vector_db_impl.py"]
    asked: set[str] = set()
    for module in modules:
        asked |= set(re.findall(r'pm\.is_installed\("([^"]+)"\)', (root / module).read_text()))
    asked.discard("pgvector")  # only PGVectorStorage asks, which we never use
    assert "asyncpg" in asked
    missing = [name for name in asked if find_spec(name.replace("-", "_")) is None]
    assert missing == []
