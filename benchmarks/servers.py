"""Spawning, readiness, memory and clean shutdown of the servers under test; shield's spec.

Each server runs in a process group of its own, so stopping it takes down anything it
spawned. Memory and CPU time are read from /proc, summed over the process tree.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx

from benchmarks.harness import REPO


@dataclass(frozen=True)
class ServerSpec:
    """How to start one server over HTTP and over stdio."""

    name: str
    http_argv: list[str]  # may contain "{port}"
    stdio_argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    http_env: dict[str, str] = field(default_factory=dict)  # values may contain "{port}"
    mcp_path: str = "/mcp"
    health_path: str | None = None

    def http_command(self, port: int) -> list[str]:
        return [a.replace("{port}", str(port)) for a in self.http_argv]

    def http_environ(self, port: int) -> dict[str, str]:
        extra = {k: v.replace("{port}", str(port)) for k, v in self.http_env.items()}
        return os.environ | self.env | extra


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def rss_kib(pid: int) -> int:
    """VmRSS of ``pid`` and all its descendants, in KiB (0 for a vanished process)."""
    total = 0
    for p in [pid, *_descendants(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def _descendants(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except FileNotFoundError:
        return out
    for task in tasks:
        try:
            children = (task / "children").read_text().split()
        except FileNotFoundError:
            continue
        for child in map(int, children):
            out += [child, *_descendants(child)]
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its descendants (threads included)."""
    ticks = 0
    for p in [pid, *_descendants(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def wait_idle(
    pid: int, *, window: float = 0.5, busy: float = 0.05, timeout: float = 120.0
) -> float:
    """Wait until ``pid`` uses under ``busy`` of a core over ``window``; returns seconds waited.

    Servers may index or compact in the background after a bulk write; latency is timed
    only once that work is done.
    """
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        before = cpu_seconds(pid)
        time.sleep(window)
        if cpu_seconds(pid) - before < busy * window:
            break
    return time.monotonic() - start


class RunningServer:
    """A server process started over HTTP; use as a context manager."""

    def __init__(self, spec: ServerSpec, log_dir: Path, *, ready_timeout: float = 120.0) -> None:
        self.spec = spec
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}{spec.mcp_path}"
        self.log_path = log_dir / f"{spec.name}-{self.port}.log"
        self._ready_timeout = ready_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self.ready_s = 0.0

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def start(self) -> RunningServer:
        log = self.log_path.open("wb")
        start = time.perf_counter()
        self._proc = subprocess.Popen(
            self.spec.http_command(self.port),
            env=self.spec.http_environ(self.port),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=REPO,
        )
        log.close()
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self.ready_s = time.perf_counter() - start
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self._ready_timeout
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"{self.spec.name} exited with {self._proc.returncode}:\n{self.log_tail()}"
                )
            if self._probe():
                return
            time.sleep(0.05)
        raise TimeoutError(f"{self.spec.name} not ready in {self._ready_timeout}s")

    def _probe(self) -> bool:
        if self.spec.health_path is None:
            with socket.socket() as s:
                s.settimeout(0.2)
                return s.connect_ex(("127.0.0.1", self.port)) == 0
        try:
            url = f"http://127.0.0.1:{self.port}{self.spec.health_path}"
            return httpx.get(url, timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False

    def rss_kib(self) -> int:
        return rss_kib(self.pid)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGINT, 5.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        # The group may outlive its leader for a moment; make sure nothing is left behind.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    def __enter__(self) -> RunningServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def shield_command() -> list[str]:
    """``shield-mcp`` as this checkout's code: the interpreter running the harness, with
    ``-m shield_mcp.cli`` from the repository root (so an installed console script of an
    older checkout cannot stand in for it)."""
    return [sys.executable, "-m", "shield_mcp.cli"]


def shield_available() -> bool:
    probe = subprocess.run(
        [*shield_command(), "serve", "--help"], capture_output=True, timeout=60, cwd=REPO
    )
    return probe.returncode == 0


def shield_spec(data_dir: Path, extra_env: dict[str, str] | None = None) -> ServerSpec:
    """``shield-mcp serve`` on ``data_dir``: over HTTP at /mcp (GET /health), or stdio."""
    serve = [*shield_command(), "serve", "--transport"]
    env = {"SHIELD_DATA_DIR": str(data_dir)}
    if "PYTHONPATH" in os.environ:  # the stdio client passes only a minimal environment
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return ServerSpec(
        name="shield",
        http_argv=[*serve, "http", "--host", "127.0.0.1", "--port", "{port}"],
        stdio_argv=[*serve, "stdio"],
        env=env | (extra_env or {}),
        health_path="/health",
    )
