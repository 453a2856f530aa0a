"""What every suite's run shares: paths, the log line, quiet-machine waits, run metadata.

The machine is shared (2 cores): before each phase a run waits for other work to stop
and records how long it waited and how busy the machine still was (``meta.quiet_waits``).
"""

from __future__ import annotations

import os
import platform
import sys
import time
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO / ".bench"  # git-ignored: the peer's venv, model cache, vector cache
RESULTS_DIR = REPO / "benchmarks" / "results"


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _cpu_times() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return idle, sum(fields)


def system_busy(window: float = 1.0) -> float:
    """Fraction of all cores busy over ``window`` seconds (anything on the machine)."""
    idle0, total0 = _cpu_times()
    time.sleep(window)
    idle1, total1 = _cpu_times()
    return 1.0 - (idle1 - idle0) / max(1, total1 - total0)


def wait_quiet(threshold: float = 0.15, max_wait: float = 60.0) -> dict[str, float]:
    """Wait (up to ``max_wait`` s) until other work on the machine uses under ``threshold``.

    A phase started during someone's test run would measure that test run. Returns the
    seconds waited and the last busy fraction seen.
    """
    start = time.monotonic()
    busy = system_busy()
    while busy > threshold and time.monotonic() - start < max_wait:
        busy = system_busy()
    return {"waited_s": round(time.monotonic() - start, 1), "busy": round(busy, 3)}


@dataclass
class QuietWaits:
    """The wait before each phase, and its record (``meta.quiet_waits``)."""

    max_wait: float
    log: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, what: str = "") -> dict[str, float]:
        if self.max_wait <= 0:
            return {}
        seen = wait_quiet(max_wait=self.max_wait)
        if seen["waited_s"] > 1.5:
            log(f"  waited {seen['waited_s']} s for a quiet machine (busy {seen['busy']:.0%})")
        self.log.append({"before": what, **seen})
        return seen


def versions(*names: str) -> dict[str, str]:
    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out


def new_meta(settings: dict[str, Any], package_versions: dict[str, str]) -> dict[str, Any]:
    """The ``meta`` of a results file at the start of a run (``notes`` filled as it goes)."""
    return {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "settings": settings,
        "versions": package_versions,
        "loadavg_start": os.getloadavg(),
        "notes": [],
    }


def finish_meta(meta: dict[str, Any], started: float, quiet: QuietWaits) -> None:
    """Duration (from ``time.monotonic()`` at ``started``), load at the end, the waits."""
    meta["duration_s"] = time.monotonic() - started
    meta["loadavg_end"] = os.getloadavg()
    meta["quiet_waits"] = quiet.log
