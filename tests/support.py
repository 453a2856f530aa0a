"""Helpers the tests share: free ports, a stand-in HTTP service, a real server subprocess."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
SHIELD = str(Path(sys.executable).with_name("shield-mcp"))

# (status, reply) from a handler that gets (method, path, json body). The reply is sent as
# JSON, or as it is when it is bytes (for answers that are not valid JSON).
Handler = Callable[[str, str, Any], tuple[int, Any]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


class ServerProcess:
    """``shield-mcp serve --transport http`` as a real subprocess on a free port."""

    def __init__(self, data_dir: Path, log_path: Path, *, host: str = "127.0.0.1", **env: str):
        self.port = free_port()
        self.host = host
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [SHIELD, "serve", "--transport", "http", "--host", host, "--port", str(self.port)],
            env=server_env(data_dir, **env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: {self.log()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"server not ready: {self.log()}")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
        return int(self.proc.returncode)


@contextmanager
def running_server(data_dir: Path, log_path: Path, **env: str) -> Iterator[ServerProcess]:
    server = ServerProcess(data_dir, log_path, **env)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
