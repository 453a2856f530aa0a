"""Background work at a lower CPU priority than the request path (Linux niceness).

On a small machine the jobs (converting, chunking, embedding) and the accept path of new
jobs compete for the same cores; measured on 2 cores, a worker under ``nice -n 19`` cut the
accept p99 of 32 MCP sessions from 749 to 536 ms. So background work runs niced by default
(``SHIELD_BACKGROUND_NICE``, 10; 0 turns it off):

- a ``shield-mcp worker`` process lowers every thread of itself at start
  (``lower_process_priority``); the docling child it spawns inherits that;
- in the embedded default the job work shares the process with the request path, so only
  the threads that do nothing but job work are lowered: the docling child, the vector
  store's index builder, and the embedder's thread for job batches, which a job's code
  reaches because it runs inside ``background()`` (a context variable, so it follows the
  job into every task it starts).

Linux keeps a nice value per thread (``setpriority(PRIO_PROCESS, tid, n)``), and a thread
or process starts with the value of the thread that created it: onnxruntime's intra-op
threads take the value of the thread that created the session (checked with
onnxruntime 1.32). An unprivileged process may raise its nice value but never lower it
again, so a lowered thread stays lowered: only threads dedicated to background work are.
Elsewhere (macOS, Windows) the calls do nothing.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_NICE = 10
MAX_NICE = 19

_SUPPORTED = sys.platform == "linux"
_configured = 0  # this process's background nice value (configure())
_in_background: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "shield_background", default=False
)


def thread_nice(tid: int | None = None) -> int:
    """The nice value of thread ``tid`` of this process (default: the calling thread)."""
    if not _SUPPORTED:
        return 0
    tid = threading.get_native_id() if tid is None else tid
    return os.getpriority(os.PRIO_PROCESS, tid)


def lower_thread_priority(nice: int) -> bool:
    """Lower the calling thread to ``nice`` (never raises it back; 0 does nothing).

    True when the value changed. Threads and processes it starts afterwards inherit it.
    """
    return _lower(threading.get_native_id(), nice)


def lower_process_priority(nice: int) -> int:
    """Lower every thread of this process to ``nice``; returns how many changed.

    For processes that do nothing but background work (``shield-mcp worker``): every
    thread that exists now, and so every thread and child process started afterwards.
    """
    if not _SUPPORTED or nice <= 0:
        return 0
    try:
        tids = [int(entry.name) for entry in Path("/proc/self/task").iterdir()]
    except OSError:
        tids = [threading.get_native_id()]
    return sum(_lower(tid, nice) for tid in tids)


def _lower(tid: int, nice: int) -> bool:
    if not _SUPPORTED or nice <= 0:
        return False
    nice = min(nice, MAX_NICE)
    try:
        if os.getpriority(os.PRIO_PROCESS, tid) >= nice:
            return False
        os.setpriority(os.PRIO_PROCESS, tid, nice)
    except OSError as exc:  # a thread that ended meanwhile, or a sandbox that forbids it
        log.debug("could not lower the priority of thread %d: %s", tid, exc)
        return False
    return True


def configure(nice: int) -> None:
    """Set this process's background nice value (the composition root, from settings)."""
    global _configured
    _configured = max(0, min(nice, MAX_NICE))


def background_nice() -> int:
    """The nice value background threads of this process take (0: not lowered)."""
    return _configured


@contextlib.contextmanager
def background() -> Iterator[None]:
    """Mark the code inside (a job, and every task it starts) as background work."""
    token = _in_background.set(True)
    try:
        yield
    finally:
        _in_background.reset(token)


def in_background() -> bool:
    """True inside ``background()``: the caller is a job, not a request."""
    return _in_background.get()


def _lower_to_configured() -> None:
    lower_thread_priority(_configured)


def background_executor(name: str, max_workers: int = 1) -> ThreadPoolExecutor:
    """An executor whose threads run at this process's background nice value.

    The value is read when each thread starts, so ``configure`` must come first (the
    composition roots call it before any work is accepted).
    """
    return ThreadPoolExecutor(
        max_workers=max_workers, thread_name_prefix=name, initializer=_lower_to_configured
    )
