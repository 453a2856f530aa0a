"""The memory cap as the parent sees it: a real process capped with ``RLIMIT_AS``."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from orchestrator.pipeline.convert.limits import peak_near_cap

# Caps itself 512 MiB above its size, then allocates ``fill`` MiB and waits to be looked at.
_CAPPED = textwrap.dedent(
    """
    import sys
    from orchestrator.pipeline.convert.limits import apply_memory_limit
    apply_memory_limit(512)
    try:
        held = bytearray(int(sys.argv[1]) << 20)
    except MemoryError:
        held = None
    print("filled", flush=True)
    sys.stdin.read()
    """
)


@contextmanager
def capped_process(fill_mib: int) -> Iterator[int]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _CAPPED, str(fill_mib)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "filled\n"
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc and prlimit")
def test_a_process_that_filled_its_cap_is_seen_near_it() -> None:
    with capped_process(500) as pid:
        assert peak_near_cap(pid)


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc and prlimit")
def test_a_process_far_below_its_cap_is_not() -> None:
    with capped_process(1) as pid:
        assert not peak_near_cap(pid)


def test_a_process_that_is_gone_is_not() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert not peak_near_cap(proc.pid)
