"""What the deployment tests share: docker-compose.yml as data, compose's variable
interpolation, the settings every process reads (from the settings classes themselves), and
the entries of .env.example."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from pydantic_settings import BaseSettings

from knowledge.settings import KnowledgeSettings
from mcp_server.settings import ServerSettings
from orchestrator.settings import OrchestratorSettings
from tests.deploy.tools import REPO

COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
SETTINGS_CLASSES: tuple[type[BaseSettings], ...] = (
    KnowledgeSettings,
    ServerSettings,
    OrchestratorSettings,
)
# The subcommand a shield-mcp service runs -> the settings that process reads.
PROCESS_SETTINGS: dict[str, type[BaseSettings]] = {
    "serve": ServerSettings,
    "orchestrator": OrchestratorSettings,
    "worker": OrchestratorSettings,
}

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, ${NAME:+other};
# `$$` is compose's escape for a literal `$` (a variable of the container's shell).
_BRACED = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}")
_BARE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class Interpolation:
    name: str
    operator: str  # "" (plain), ":-", "-", ":?", "?", ":+", "+"
    argument: str


def interpolations(value: str) -> list[Interpolation]:
    """The variables compose substitutes in ``value``."""
    text = value.replace("$$", "")
    found = [Interpolation(m[1], m[2] or "", m[3] or "") for m in _BRACED.finditer(text)]
    found += [Interpolation(m[1], "", "") for m in _BARE.finditer(_BRACED.sub("", text))]
    return found


def substitute(value: str, placeholder: str = "x") -> str:
    """``value`` with every variable replaced by ``placeholder`` (to parse a URL in it)."""
    text = _BRACED.sub(placeholder, value.replace("$$", ""))
    return _BARE.sub(placeholder, text)


def strings(node: Any) -> list[str]:
    """Every string of a YAML document: keys and values, at any depth."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in (*strings(key), *strings(value))]
    if isinstance(node, list):
        return [s for item in node for s in strings(item)]
    return []


@cache
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def services() -> dict[str, dict[str, Any]]:
    return dict(compose()["services"])


def compose_variables() -> set[str]:
    """The variables docker-compose.yml reads from the shell or .env."""
    return {i.name for s in strings(compose()) for i in interpolations(s)}


def environment(service: dict[str, Any]) -> dict[str, str | None]:
    """A service's environment as a mapping (None: passed through from the shell or .env)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = [entry.split("=", 1) for entry in env]
        return {pair[0]: (pair[1] if len(pair) == 2 else None) for pair in pairs}
    return {str(k): (None if v is None else str(v)) for k, v in env.items()}


def command(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command") or []
    return cmd.split() if isinstance(cmd, str) else [str(part) for part in cmd]


def shield_services() -> dict[str, str]:
    """The services that run shield-mcp -> the subcommand each runs."""
    out = {}
    for name, service in services().items():
        if str(service.get("image", "")).split(":")[0] == "shield-mcp":
            out[name] = command(service)[0]
    return out


def is_one_shot(service: dict[str, Any]) -> bool:
    """A service that runs once and exits (ollama-pull): no restart, no healthcheck."""
    return str(service.get("restart", "no")) == "no"


def option(args: list[str], flag: str) -> str | None:
    """The value of ``--flag value`` or ``--flag=value`` in a command line."""
    for index, arg in enumerate(args):
        if arg == flag and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(f"{flag}="):
            return arg.split("=", 1)[1]
    return None


def listening_ports(name: str) -> set[int]:
    """The ports a service's processes listen on, as compose tells them or publishes them."""
    service = services()[name]
    ports: set[int] = set()
    args = command(service)
    for flag in ("--port", "--web.listen-address"):
        value = option(args, flag)
        if value is not None:
            ports.add(int(value.rsplit(":", 1)[-1]))
    metrics_port = environment(service).get("SHIELD_METRICS_PORT")
    if metrics_port:
        ports.add(int(metrics_port))
    for entry in [*(service.get("ports") or []), *(service.get("expose") or [])]:
        container_side = str(entry).rsplit(":", 1)[-1].split("/")[0]
        ports.add(int(container_side))
    return ports


@dataclass(frozen=True)
class Mount:
    source: str
    target: PurePosixPath
    read_only: bool

    @property
    def is_bind(self) -> bool:
        return self.source.startswith(("./", "../", "/"))

    @property
    def repo_path(self) -> Path:
        return (REPO / self.source).resolve()


def mounts(service: dict[str, Any]) -> list[Mount]:
    out = []
    for entry in service.get("volumes") or []:
        if isinstance(entry, dict):
            out.append(
                Mount(
                    str(entry["source"]),
                    PurePosixPath(entry["target"]),
                    bool(entry.get("read_only")),
                )
            )
            continue
        source, target, *mode = str(entry).split(":")
        out.append(Mount(source, PurePosixPath(target), "ro" in mode))
    return out


def container_to_repo(service: dict[str, Any], path: PurePosixPath) -> Path | None:
    """The repo path a bind mount shows at ``path`` in the container, if one does."""
    for mount in sorted(mounts(service), key=lambda m: len(m.target.parts), reverse=True):
        if mount.is_bind and (path == mount.target or mount.target in path.parents):
            return mount.repo_path / path.relative_to(mount.target)
    return None


def secret_targets(service: dict[str, Any]) -> dict[PurePosixPath, str]:
    """Where each of a service's secrets is mounted -> the secret's name."""
    out = {}
    for entry in service.get("secrets") or []:
        name = entry if isinstance(entry, str) else entry["source"]
        target = entry.get("target") if isinstance(entry, dict) else None
        path = PurePosixPath(target or name)
        if not path.is_absolute():
            path = PurePosixPath("/run/secrets") / path
        out[path] = name
    return out


def setting_classes() -> dict[str, type[BaseSettings]]:
    """Every setting's environment variable -> the first settings class that declares it."""
    out: dict[str, type[BaseSettings]] = {}
    for cls in SETTINGS_CLASSES:
        for env in env_names(cls):
            out.setdefault(env, cls)
    return out


def env_names(cls: type[BaseSettings]) -> set[str]:
    prefix = str(cls.model_config.get("env_prefix", ""))
    return {f"{prefix}{name}".upper() for name in cls.model_fields}


def field_name(cls: type[BaseSettings], env: str) -> str:
    prefix = str(cls.model_config.get("env_prefix", ""))
    return env[len(prefix) :].lower()


@dataclass(frozen=True)
class EnvEntry:
    name: str
    value: str
    commented: bool
    comment: str  # the comment lines just above it, joined
    line: int


_ENTRY = re.compile(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$")


def env_example() -> list[EnvEntry]:
    """The variables .env.example sets, or shows commented out with their default."""
    entries = []
    comment: list[str] = []
    for number, raw in enumerate(ENV_EXAMPLE.read_text().splitlines(), start=1):
        line = raw.strip()
        match = _ENTRY.match(line)
        if match:
            entries.append(EnvEntry(match[2], match[3], bool(match[1]), " ".join(comment), number))
            comment = []
        elif line.startswith("#"):
            comment.append(line.lstrip("#").strip())
        else:
            comment = []
    return entries
