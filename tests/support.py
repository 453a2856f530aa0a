"""Helpers the tests share: ports, a stand-in HTTP service and website, real server
subprocesses and their ``dependency_up``, and a clock for the circuit breakers.

Ports: a port found free can be taken by another process (another test run on the same
machine) before a server binds it. So an in-process server binds port 0 itself
(``bound_socket``), an address that must refuse connections stays bound here for as long as
it is needed (``closed_port``), and a server subprocess, which has to be told a port, is
started again on another one when it finds its port taken (``HttpProcess``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[1]
SHIELD = str(Path(sys.executable).with_name("shield-mcp"))

# (status, reply) from a handler that gets (method, path, json body). The reply is sent as
# JSON, or as it is when it is bytes (for answers that are not valid JSON).
Handler = Callable[[str, str, Any], tuple[int, Any]]


def free_port() -> int:
    """A port nothing uses at this moment; another process may take it before it is bound.

    Only for a server subprocess that is started again when its port was taken (what
    ``HttpProcess`` does). A server in this process binds ``bound_socket()`` instead, and
    an address that must refuse connections is a ``closed_port()``.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bound_socket() -> socket.socket:
    """A TCP socket bound to a port of 127.0.0.1 the kernel chose; not yet listening.

    Hand it to the server that will listen on it (``uvicorn.Server.serve(sockets=[...])``):
    no other process can take the port in between.
    """
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def closed_port() -> Iterator[int]:
    """A port of 127.0.0.1 that refuses connections for as long as the block runs.

    It is bound here and never listened on, so a connection gets "connection refused", and
    no server (of this run or another one) can start on it meanwhile.
    """
    with bound_socket() as sock:
        yield int(sock.getsockname()[1])


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out has hung up; writing the late answer then fails. Expected.
        pass


class StubService:
    """A real HTTP server on 127.0.0.1 answering with a Python function.

    Stands in for services that cannot run on the test machine (Ollama, an OpenAI-compatible
    endpoint): the code under test still speaks real HTTP to it.
    """

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[tuple[str, str, Any]] = []
        self.headers: list[dict[str, str]] = []  # of each request, names lowercased
        stub = self

        class _Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                stub.requests.append((self.command, self.path, body))
                stub.headers.append({k.lower(): v for k, v in self.headers.items()})
                status, reply = stub.handler(self.command, self.path, body)
                data = reply if isinstance(reply, bytes) else json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self._server = _QuietServer(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        # A short poll interval: the default 0.5 s makes every shutdown cost half a second.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> StubService:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def server_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIELD_")}
    env.update({"SHIELD_DATA_DIR": str(data_dir), **extra})
    return env


ADDRESS_IN_USE = "address already in use"  # what uvicorn logs when its port is taken


def listens(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds a TCP socket listening on ``port`` (Linux /proc)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as rows:
            for row in list(rows)[1:]:
                fields = row.split()
                # local address "HEX_IP:HEX_PORT", state 0A = LISTEN, inode in column 10
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                    inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return False
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                if os.readlink(fd) in inodes:
                    return True
    return False


class HttpProcess:
    """A ``shield-mcp`` command that serves HTTP, as a real subprocess in its own session.

    ``command(port)`` gives its arguments for a port. The port is picked before the
    process binds it; should another process take it first, the server exits saying
    "address already in use" and is started again on another port. Ready means this
    process listens on the port (not merely that something answers there) and /health
    answers 200.
    """

    ATTEMPTS = 5

    def __init__(
        self, command: Callable[[int], list[str]], env: dict[str, str], log_path: Path
    ) -> None:
        self.command = command
        self.env = env
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self._attempts = 0
        self._spawn()

    def _spawn(self) -> None:
        self._attempts += 1
        self._log.flush()
        self._log_start = self.log_path.stat().st_size  # where this attempt's output begins
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [SHIELD, *self.command(self.port)],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                if ADDRESS_IN_USE in self._attempt_log() and self._attempts < self.ATTEMPTS:
                    self._spawn()  # another process took the port first
                    deadline = time.monotonic() + timeout
                    continue
                raise RuntimeError(f"server exited {self.proc.returncode}: {self.log()}")
            if listens(self.proc.pid, self.port):
                try:
                    if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
            time.sleep(0.1)
        raise TimeoutError(f"server not ready within {timeout:g} s: {self.log()}")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def _attempt_log(self) -> str:
        return self.log_path.read_bytes()[self._log_start :].decode(errors="replace")

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
        return int(self.proc.returncode)


class ServerProcess(HttpProcess):
    """``shield-mcp serve --transport http`` as a real subprocess on a free port."""

    def __init__(self, data_dir: Path, log_path: Path, *, host: str = "127.0.0.1", **env: str):
        self.host = host
        super().__init__(
            lambda port: ["serve", "--transport", "http", "--host", host, "--port", str(port)],
            server_env(data_dir, **env),
            log_path,
        )


@contextmanager
def running_server(data_dir: Path, log_path: Path, **env: str) -> Iterator[ServerProcess]:
    server = ServerProcess(data_dir, log_path, **env)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def dependency_up(metrics: str) -> dict[str, float]:
    """``dependency_up`` by its ``dependency`` label, from a /metrics answer."""
    return {
        sample.labels["dependency"]: sample.value
        for family in text_string_to_metric_families(metrics)
        if family.name == "dependency_up"
        for sample in family.samples
    }


def until_dependency(
    http: httpx.Client, name: str, value: float, server: HttpProcess, hang: float = 60.0
) -> None:
    """Polls the /metrics of ``http`` until ``dependency_up`` of ``name`` is ``value``; a
    probe changes it on its own schedule. ``hang`` guards against a hang only."""
    deadline = time.monotonic() + hang
    while dependency_up(http.get("/metrics").text).get(name) != value:
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} never {value}:\n{server.log()[-3000:]}")
        time.sleep(0.1)


def not_ready(http: httpx.Client, down: str, setting: str, up: Iterable[str]) -> httpx.Response:
    """Checks that /ready answers 503 naming ``down`` and the ``setting`` to look at, with
    the ``up`` components ok; its answer. (The messages stand in for pytest's assertion
    rewriting, which covers test modules only.)"""
    ready = http.get("/ready")
    assert ready.status_code == 503, ready.text
    body = ready.json()
    assert body["status"] == "not_ready", body
    for name in up:
        assert body["components"][name] == "ok", body
    assert setting in body["components"][down], body
    assert body["error"]["message"].startswith(f"Not ready: {down}: "), body
    return ready


class BreakerClock:
    """The clock of the ``circuitbreaker`` package, held still and moved by the test.

    A breaker's recovery then happens exactly when the test moves the clock past it, never
    because the machine was slow between two steps (``breaker_clock`` fixture).
    """

    def __init__(self) -> None:
        # A whole number of seconds: moved by halves it stays exact, so the breaker's
        # arithmetic on it (recovery time left, rounded up) has no float error to round.
        self.now = float(int(time.monotonic()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@contextmanager
def serve_pages(
    pages: dict[str, str], *, whole: bool = False, not_found: str = ""
) -> Iterator[str]:
    """A real website on 127.0.0.1 serving ``pages`` (path -> HTML); yields its base URL.

    A page is the body of an HTML document, or the whole document when ``whole``. Other
    paths answer 404 with ``not_found``.
    """

    class _Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            page = pages.get(self.path.split("?")[0])
            if page is None:
                data = not_found.encode()
            else:
                data = (page if whole else f"<html><body>{page}</body></html>").encode()
            self.send_response(200 if page is not None else 404)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = _QuietServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
