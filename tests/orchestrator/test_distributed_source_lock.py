"""Two worker processes storing the same source take turns (a PostgreSQL advisory lock).

Without it, two jobs of one source in two workers interleave: the one finishing last
deletes the other's fresh passages as stale. The embedded store admits one process per
data dir, so each worker here has its own; the lock does not care where the vectors go,
and what is checked is that the second job does not store while the first does.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.pipeline.context import SOURCE_LOCKS
from orchestrator.pipeline.ingest import source_lock_name
from orchestrator.shared_locks import advisory_key
from tests.orchestrator.cluster import PSQL, cluster_environment
from tests.orchestrator.test_distributed import HANG, Cluster, stored_points, terminal

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.timeout(300),
]

PARAGRAPHS = 700  # enough chunks that storing them takes seconds, not a blink


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    # One job per worker: a worker whose job waits on the lock cannot take the second one,
    # so the two jobs run in two processes.
    with cluster_environment(
        tmp_path, "shield_srclock", SHIELD_LEASE_SECONDS="5", SHIELD_WORKER_CONCURRENCY="1"
    ) as env:
        c = Cluster(tmp_path, env)
        try:
            c.orchestrator()
            yield c
        finally:
            c.close()


class HeldLock:
    """A psql session holding the source's advisory lock, as another worker would."""

    def __init__(self, database_url: str, key: int) -> None:
        database = database_url.rsplit("/", 1)[1]
        self.key = key
        self.proc = subprocess.Popen(
            [*PSQL, "-d", database],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._send(f"SELECT pg_advisory_lock({key});\n\\echo locked\n")
        assert self.proc.stdout is not None
        while "locked" not in self.proc.stdout.readline():
            pass

    def _send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def release(self) -> None:
        if self.proc.poll() is None:
            self._send(f"SELECT pg_advisory_unlock({self.key});\n\\q\n")
            self.proc.wait(timeout=30)


def _document(docs_dir: Path) -> Path:
    path = docs_dir / "shared.md"
    body = "\n\n".join(
        f"Paragraph {i} of the shared handbook explains step {i} of the harbour crane's "
        f"maintenance, with the torque {i * 7 % 90} and the bolt size M{i % 20 + 6}."
        for i in range(PARAGRAPHS)
    )
    path.write_text(f"# Shared handbook\n\n{body}\n")
    return path


def _stage(job: dict[str, Any]) -> str:
    return str(job["progress"].get("stage") or "")


def test_two_workers_take_turns_on_one_source(cluster: Cluster, tmp_path: Path) -> None:
    docs_dir = Path(cluster.env["SHIELD_INGEST_ROOTS"])
    source = str(_document(docs_dir).resolve())
    key = advisory_key(SOURCE_LOCKS, source_lock_name("shield", source))
    # Held first by "another worker": both jobs must wait for it, whichever process runs them.
    held = HeldLock(cluster.env["SHIELD_DATABASE_URL"], key)
    try:
        dirs = [tmp_path / "worker-a", tmp_path / "worker-b"]
        workers = [cluster.worker(d, d.name) for d in dirs]
        # Two requests of one source that differ in options: two jobs, not one reused.
        ids = [
            cluster.submit({"kind": "document", "source": source, "metadata": {"run": str(i)}})
            for i in range(2)
        ]
        for job_id in ids:
            job = cluster.until(job_id, lambda j: _stage(j) == "waiting" or terminal(j))
            assert job["status"] == "running", f"did not wait for the held lock: {job}"
    finally:
        held.release()

    # Now one stores while the other keeps waiting; never both at once.
    storing = {"embedding"}
    overlap: list[tuple[str, str]] = []
    seen_storing = {job_id: False for job_id in ids}
    deadline = time.monotonic() + HANG
    jobs = [cluster.job(job_id) for job_id in ids]
    while not all(terminal(j) for j in jobs):
        assert time.monotonic() < deadline, jobs
        stages = [_stage(j) if j["status"] == "running" else j["status"] for j in jobs]
        for job_id, stage in zip(ids, stages, strict=True):
            seen_storing[job_id] |= stage in storing
        if all(stage in storing for stage in stages):
            overlap.append((stages[0], stages[1]))
        time.sleep(0.05)
        jobs = [cluster.job(job_id) for job_id in ids]
    for worker in workers:
        assert worker.stop() == 0, worker.log()[-3000:]

    assert all(j["status"] == "succeeded" for j in jobs), jobs
    assert not overlap, f"both jobs stored the same source at once: {overlap}"
    assert all(seen_storing.values()), "each job was seen storing (else the check proves little)"
    # Each worker's store got the whole document once.
    per_worker = [[p for p in stored_points(d) if p["metadata"]["source"] == source] for d in dirs]
    stored = [len(points) for points in per_worker if points]
    assert stored and all(n == jobs[0]["result"]["chunks_stored"] for n in stored), stored
