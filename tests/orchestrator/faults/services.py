"""Private Redis and PostgreSQL servers the fault tests may kill and start again.

The machine's own services (127.0.0.1:6379 and :5432) are shared by every other test; a
test that killed them would break the rest. These run from the machine's binaries on free
ports, with their data under the test's tmp dir, in sessions of their own: ``kill()`` is a
SIGKILL of the whole process group (PostgreSQL's backends too), ``start()`` brings the server
back on the same port and data dir.

Where a binary is missing, ``redis_binary()`` / ``postgres_binaries()`` say which, and the
fixtures skip with that reason.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.support import free_port

START_SECONDS = 30.0
_PG_GLOBS = ("/usr/lib/postgresql/*/bin", "/usr/local/pgsql/bin", "/usr/pgsql-*/bin")


def redis_binary() -> str | None:
    return shutil.which("redis-server")


def postgres_binaries() -> Path | None:
    """The directory holding ``initdb`` and ``postgres`` (Debian keeps them off PATH)."""
    found = shutil.which("initdb")
    candidates = [Path(found).resolve().parent] if found else []
    for pattern in _PG_GLOBS:
        candidates += [Path(p) for p in sorted(glob.glob(pattern), reverse=True)]
    for directory in candidates:
        if (directory / "initdb").exists() and (directory / "postgres").exists():
            return directory
    return None


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


class _Daemon:
    """A server process in its own session, on a port chosen once and kept."""

    name = "server"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"{self.name}.log"
        self.kills = 0

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _popen_extra(self) -> dict[str, Any]:
        return {}

    def _ready(self) -> bool:
        return _accepts(self.port)

    def start(self) -> None:
        """Start (again) on the same port and data; returns once it answers."""
        if self.running:
            return
        if _accepts(self.port):
            raise RuntimeError(
                f"port {self.port} of the private {self.name} was taken by another process "
                "while it was down; run the test again"
            )
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self._command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **self._popen_extra(),
            )
        deadline = time.monotonic() + START_SECONDS
        while not self._ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.proc.returncode}: {self.log()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} not ready in {START_SECONDS:g} s: {self.log()}")
            time.sleep(0.05)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL, the whole process group: what a crash or an OOM kill does."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.kills += 1
        # Children (PostgreSQL backends) are in the group too; wait until the port is free.
        deadline = time.monotonic() + 10
        while _accepts(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    stop = kill

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


class RedisServer(_Daemon):
    """``redis-server`` without persistence: a restart loses every stream, as a Redis with
    no AOF does after a crash (the recovery this must survive)."""

    name = "redis"

    def __init__(self, workdir: Path, binary: str) -> None:
        super().__init__(workdir)
        self.binary = binary

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _command(self) -> list[str]:
        return [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.workdir),
        ]

    def _ready(self) -> bool:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", self.port), 0.5) as s,
        ):
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
        return False


def _run_as() -> dict[str, Any]:
    """initdb and postgres refuse to run as root: run them as the ``postgres`` user then."""
    if os.geteuid() != 0:
        return {}
    return {"user": "postgres", "group": "postgres"}


def _give_to_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


def postgres_dir(prefix: str) -> Path:
    """A directory the postgres user can reach: pytest's tmp dirs are private to root (0700
    all the way up), so PostgreSQL's files live in a directory of their own under /tmp."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    _give_to_postgres(path)
    return path


def init_template(bindir: Path, root: Path) -> Path:
    """A fresh cluster (trust auth, user postgres) under ``root`` (see ``postgres_dir``);
    tests copy it rather than run initdb each time."""
    data = root / "template"
    subprocess.run(
        [
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        ],
        check=True,
        capture_output=True,
        **_run_as(),
    )
    return data


class PostgresServer(_Daemon):
    """``postgres`` on a copy of the session's template cluster; ``workdir`` holds its log,
    the cluster and its socket live in a ``postgres_dir`` removed by ``remove()``."""

    name = "postgres"

    def __init__(self, workdir: Path, bindir: Path, template: Path) -> None:
        super().__init__(workdir)
        self.bindir = bindir
        self.root = postgres_dir("shield-pg-")
        self.data = self.root / "pgdata"
        # cp -a keeps the owner and the 0700 mode postgres insists on.
        subprocess.run(["cp", "-a", str(template), str(self.data)], check=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _command(self) -> list[str]:
        return [
            str(self.bindir / "postgres"),
            "-D",
            str(self.data),
            "-p",
            str(self.port),
            "-k",
            str(self.root),
            "-c",
            "listen_addresses=127.0.0.1",
            # The process is killed, never the machine: durability on disk is not tested.
            "-c",
            "fsync=off",
            "-c",
            "max_connections=200",
        ]

    def _popen_extra(self) -> dict[str, Any]:
        return _run_as()

    def _ready(self) -> bool:
        done = subprocess.run(
            [str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"],
            check=False,
        )
        return done.returncode == 0

    def create_database(self, name: str) -> str:
        subprocess.run(
            [
                str(self.bindir / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-q",
                "-c",
                f'CREATE DATABASE "{name}"',
            ],
            check=True,
            capture_output=True,
        )
        return self.url(name)

    def remove(self) -> None:
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)
