"""The two layouts under load: the embedded default, and the distributed one (an
orchestrator, N ``shield-mcp worker`` processes, Redis and PostgreSQL, and an MCP server
pointed at the orchestrator), all on this machine.

Each process runs in a process group of its own; ``Layout.processes`` names the pid of
each, for RSS and CPU from /proc. The distributed layout gets a PostgreSQL database and a
Redis stream of its own, removed afterwards (as tests/orchestrator/cluster.py does; the
benchmarks do not import the tests).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.harness import REPO
from benchmarks.servers import RunningServer, ServerSpec, shield_command

PSQL = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-q"]
REDIS_URL = "redis://127.0.0.1:6379/0"

# What every process of a layout runs with: quiet logs, the local site allowed, no long
# waits at stop (a stopped benchmark has nothing worth finishing).
COMMON_ENV = {
    "SHIELD_CRAWL_ALLOW_PRIVATE": "true",
    "SHIELD_LOG_LEVEL": "WARNING",
    "CRAWL4AI_NO_CLOUD_NOTICE": "1",
    "SHIELD_SHUTDOWN_GRACE_SECONDS": "1",
}


def base_environ() -> dict[str, str]:
    """This process's environment without any SHIELD_ setting of the shell."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SHIELD_")}


class WorkerProcess:
    """``shield-mcp worker``: no port, ready once its log says so."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [*shield_command(), "worker"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=REPO,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while "worker ready" not in self.log_path.read_text(errors="replace"):
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log_path.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} not ready within {timeout:g} s")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=15)
                return
            except subprocess.TimeoutExpired:
                continue


@dataclass
class Layout:
    """A running layout: where the MCP server listens and the pid of each process."""

    name: str
    mcp_url: str
    processes: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    lightrag: bool = True  # whether lightrag_query can answer in this layout


def _server_spec(
    name: str, argv: list[str], env: dict[str, str], profile: Path | None, health: str
) -> ServerSpec:
    command = shield_command()
    if profile is not None:  # the whole process under cProfile, written when it stops
        command = [command[0], "-m", "cProfile", "-o", str(profile), *command[1:]]
    return ServerSpec(
        name=name,
        http_argv=[*command, *argv],
        stdio_argv=[],
        env=env,
        health_path=health,
    )


def _serve_argv() -> list[str]:
    return ["serve", "--transport", "http", "--host", "127.0.0.1", "--port", "{port}"]


@contextlib.contextmanager
def embedded(
    scratch: Path, ingest_root: Path, *, profile_dir: Path | None = None
) -> Iterator[Layout]:
    """``shield-mcp serve`` with nothing configured but its data dir and ingest root."""
    data = Path(tempfile.mkdtemp(prefix="embedded-", dir=scratch))
    env = (
        base_environ()
        | COMMON_ENV
        | {
            "SHIELD_DATA_DIR": str(data),
            "SHIELD_INGEST_ROOTS": str(ingest_root),
        }
    )
    profile = profile_dir / "embedded-server.prof" if profile_dir else None
    spec = _server_spec("embedded-server", _serve_argv(), env, profile, "/health")
    with _spec_env(spec, env), RunningServer(spec, scratch, ready_timeout=180.0) as server:
        yield Layout("embedded", server.url, {"server": server.pid})


@contextlib.contextmanager
def _spec_env(spec: ServerSpec, env: dict[str, str]) -> Iterator[None]:
    # ServerSpec adds its env to os.environ; the benchmark's own SHIELD_ variables (a
    # developer's shell) must not reach the server, so they are masked for its start.
    hidden = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("SHIELD_")}
    try:
        yield
    finally:
        os.environ.update(hidden)


@contextlib.contextmanager
def database_and_queue() -> Iterator[dict[str, str]]:
    """A PostgreSQL database and a Redis stream of this run's own; dropped afterwards."""
    database = f"shield_load_{uuid.uuid4().hex[:10]}"
    queue = f"shield-load-{uuid.uuid4().hex[:10]}"
    subprocess.run([*PSQL, "-d", "postgres", "-c", f'CREATE DATABASE "{database}"'], check=True)
    try:
        yield {
            "SHIELD_DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{database}",
            "SHIELD_QUEUE_URL": REDIS_URL,
            "SHIELD_QUEUE_NAME": queue,
        }
    finally:
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        client.delete(queue, f"autoclaim:{queue}:workers:{queue}")
        client.close()
        subprocess.run(
            [*PSQL, "-d", "postgres", "-c", f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'],
            check=False,
        )


@contextlib.contextmanager
def distributed(
    scratch: Path,
    ingest_root: Path,
    *,
    workers: int = 2,
    profile_dir: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Layout]:
    """An orchestrator (no workers of its own), ``workers`` worker processes, and an MCP
    server reaching the orchestrator over HTTP. Each process owns its data dir: the
    embedded vector store admits one process per directory, and no Qdrant server can run
    here (in production the workers share one through SHIELD_QDRANT_URL)."""
    with database_and_queue() as shared, contextlib.ExitStack() as stack:
        env = base_environ() | COMMON_ENV | shared | (extra_env or {})
        env["SHIELD_INGEST_ROOTS"] = str(ingest_root)

        def data_dir(name: str) -> str:
            return tempfile.mkdtemp(prefix=f"{name}-", dir=scratch)

        orch_env = env | {"SHIELD_DATA_DIR": data_dir("orchestrator")}
        orch_argv = ["orchestrator", "--host", "127.0.0.1", "--port", "{port}"]
        profile = profile_dir / "orchestrator.prof" if profile_dir else None
        orch_spec = _server_spec("orchestrator", orch_argv, orch_env, profile, "/health")
        stack.enter_context(_spec_env(orch_spec, orch_env))
        orchestrator = stack.enter_context(RunningServer(orch_spec, scratch, ready_timeout=180))
        orchestrator_url = f"http://127.0.0.1:{orchestrator.port}"
        started = []
        for n in range(workers):
            # INFO: the worker says "worker ready" at that level.
            worker_env = env | {"SHIELD_DATA_DIR": data_dir("worker"), "SHIELD_LOG_LEVEL": "INFO"}
            worker = WorkerProcess(f"worker-{n + 1}", worker_env, scratch)
            stack.callback(worker.stop)
            started.append(worker)
        for worker in started:
            worker.wait_ready()
        server_env = (
            base_environ()
            | COMMON_ENV
            | {
                "SHIELD_DATA_DIR": data_dir("server"),
                "SHIELD_ORCHESTRATOR_URL": orchestrator_url,
            }
        )
        profile = profile_dir / "mcp-server.prof" if profile_dir else None
        spec = _server_spec("mcp-server", _serve_argv(), server_env, profile, "/health")
        server = stack.enter_context(RunningServer(spec, scratch, ready_timeout=180))
        processes = {"mcp server": server.pid, "orchestrator": orchestrator.pid}
        processes |= {w.name: w.pid for w in started}
        yield Layout(
            "distributed",
            server.url,
            processes,
            lightrag=False,
            notes=[
                "distributed: lightrag_query is left out of the mix: the orchestrator runs "
                "no workers, and reads LightRAG's vectors only from a shared Qdrant server "
                "(SHIELD_QDRANT_URL), which cannot run on this machine."
            ],
        )
