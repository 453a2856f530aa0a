"""What the distributed tests share: shield-mcp processes, and a PostgreSQL database and
Redis queue name of the test's own on this machine's services, removed after it."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support import SHIELD

PSQL = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-q"]
REDIS_URL = "redis://127.0.0.1:6379/0"


class Proc:
    """A shield-mcp subprocess in its own process group (its docling child dies with it)."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [SHIELD, *args],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()
        return int(self.proc.returncode)


@contextmanager
def cluster_environment(tmp_path: Path, prefix: str, **settings: str) -> Iterator[dict[str, str]]:
    """SHIELD_ settings of a cluster: its own database and queue, an ingest root, and
    ``settings``; the database and the Redis stream are removed afterwards."""
    database = f"{prefix}_{uuid.uuid4().hex[:10]}"
    queue = f"shield-test-{uuid.uuid4().hex[:10]}"
    subprocess.run([*PSQL, "-d", "postgres", "-c", f'CREATE DATABASE "{database}"'], check=True)
    docs = tmp_path / "docs"
    docs.mkdir()
    env = {
        "SHIELD_DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{database}",
        "SHIELD_QUEUE_URL": REDIS_URL,
        "SHIELD_QUEUE_NAME": queue,
        "SHIELD_RETRY_BACKOFF_SECONDS": "0.2",
        "SHIELD_SHUTDOWN_GRACE_SECONDS": "2",
        "SHIELD_INGEST_ROOTS": str(docs),
        "SHIELD_LOG_LEVEL": "INFO",
        **settings,
    }
    try:
        yield env
    finally:
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        client.delete(queue, f"autoclaim:{queue}:workers:{queue}")
        client.close()
        subprocess.run(
            [*PSQL, "-d", "postgres", "-c", f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'],
            check=True,
        )
