"""`shield-mcp worker` runs all of itself at SHIELD_BACKGROUND_NICE (10 by default), so on
a shared machine the orchestrator and the MCP server answer first; 0 leaves it as started.
Real worker processes on this machine's Redis and PostgreSQL."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.orchestrator.cluster import Proc, cluster_environment
from tests.support import server_env

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow, pytest.mark.timeout(180)]


def thread_nice(pid: int) -> set[int]:
    """The nice values of every thread of ``pid`` (field 19 of each task's stat)."""
    values = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        stat = (task / "stat").read_text()
        values.add(int(stat.rsplit(")", 1)[1].split()[16]))
    return values


def started_worker(tmp_path: Path, env: dict[str, str]) -> Proc:
    data = tmp_path / "worker-data"
    data.mkdir()
    worker = Proc(["worker"], server_env(data, **env), tmp_path / "worker.log")
    deadline = time.monotonic() + 120  # a hang guard only
    while "worker ready" not in worker.log():
        assert worker.proc.poll() is None, worker.log()
        assert time.monotonic() < deadline, worker.log()
        time.sleep(0.2)
    return worker


@pytest.mark.parametrize(("setting", "expected"), [(None, 10), ("4", 4), ("0", 0)])
def test_worker_threads_run_at_the_background_nice_value(
    tmp_path: Path, setting: str | None, expected: int
) -> None:
    extra = {} if setting is None else {"SHIELD_BACKGROUND_NICE": setting}
    with cluster_environment(tmp_path, "shield_nice", **extra) as env:
        worker = started_worker(tmp_path, env)
        try:
            # Never below what it was started with (the suite may itself run niced).
            assert thread_nice(worker.proc.pid) == {
                max(expected, os.getpriority(os.PRIO_PROCESS, 0))
            }
        finally:
            assert worker.stop() == 0, worker.log()
