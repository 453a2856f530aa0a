"""Document conversion in a long-lived child process (docling lives only there).

Why a child process: a conversion timeout must be able to stop docling (a thread cannot be
killed; a process can), a native parser crashing on a corrupt file must fail that job and
not the worker, docling's ~8 s import stays out of the server process, and CPU-bound
parsing does not hold this process's GIL. The child imports docling once and keeps its
converters; chunking runs there too and only plain ``Chunk`` objects come back.

One request is in flight at a time, so the timeout measures the conversion itself, never
time spent queueing behind another job's document. Requests wait in a one-thread executor
of the Converter's own: a crawl chunking many pages at once queues there instead of
parking threads of the event loop's default executor (which the vector store needs). The
pipe is used from that thread, so one Converter serves any number of event loops.

A caller that stops waiting (its job was cancelled or timed out) takes its conversion with
it: a request still queued is dropped, and a request in flight gets its child killed, so
the next request starts on a fresh child instead of waiting out a dead job's document.

A document that needs more memory than ``ConvertLimits.memory_mb`` fails in the child, which
then exits (limits.py); it is replaced at once, like a child that crashed or timed out.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from orchestrator.errors import ConversionFailed, StageTimeout
from orchestrator.pipeline.convert.chunking import Chunk
from orchestrator.pipeline.convert.limits import ConvertLimits, peak_near_cap
from orchestrator_client.models import DocType

log = logging.getLogger(__name__)
T = TypeVar("T")

# Importing docling and building its converters takes ~8 s here; allow for a busy machine.
START_TIMEOUT = 180.0
# How often the parent looks at the child's memory while a request is in flight.
_SAMPLE_SECONDS = 0.2
# glibc's loader exits with this code when it cannot allocate a new thread's memory: under
# the address-space cap that is the document's allocations, not a corrupt file.
_LOADER_OUT_OF_MEMORY = 127


@dataclass(frozen=True)
class Converted:
    chunks: list[Chunk]
    title: str | None
    converter: str  # e.g. "docling:native-pdf", "docling:standard-pdf", "docling:docx"
    chunk_seconds: float = 0.0  # of the conversion's time, what chunking took


class _Child:
    """One docling process and the parent's end of its pipe."""

    def __init__(self, max_tokens: int, nice: int = 0, limits: ConvertLimits | None = None) -> None:
        from orchestrator.pipeline.convert import child

        ctx = multiprocessing.get_context("spawn")
        self.conn, child_end = ctx.Pipe()
        self.process = ctx.Process(
            target=child.serve,
            args=(child_end, max_tokens, nice, limits),
            name="shield-docling",
            daemon=True,
        )
        self.process.start()
        child_end.close()  # so the parent sees EOF when the child dies
        self.ready = False
        self._kill_lock = threading.Lock()
        self.reached_cap = False  # its peak came within reach of its memory cap

    def sample_memory(self) -> None:
        """Remember whether the child's peak address space has neared its cap (limits.py)."""
        pid = self.process.pid
        if pid is not None and not self.reached_cap:
            self.reached_cap = peak_near_cap(pid)

    def died_of_memory(self) -> bool:
        """Whether a child that died without answering ran out of memory."""
        self.sample_memory()
        return self.reached_cap or self.process.exitcode == _LOADER_OUT_OF_MEMORY

    def wait_ready(self, timeout: float) -> None:
        if self.ready:
            return
        try:
            if not self.conn.poll(timeout):
                raise ConversionFailed(
                    f"The document converter did not start within {timeout:.0f} s; "
                    "the machine may be overloaded. Try again later."
                )
            kind, detail = self.conn.recv()
        except (EOFError, OSError):  # OSError: closed by aclose() meanwhile
            raise ConversionFailed(
                f"The document converter exited while starting ({self.exit_reason()}); "
                "check the worker's log and that docling is installed."
            ) from None
        if kind != "ready":
            raise ConversionFailed(f"The document converter could not start: {detail}")
        self.ready = True

    def exit_reason(self) -> str:
        self.process.join(timeout=2)
        code = self.process.exitcode
        if code is None:
            return "still running"
        if code < 0:
            return f"killed by signal {-code}"
        return f"exit code {code}"

    def kill(self) -> None:
        # Called from the request thread and from aclose() at once: closing the pipe twice
        # could close a descriptor some other file has reused meanwhile.
        with self._kill_lock:
            if self.process.is_alive():
                self.process.kill()
            self.process.join(timeout=5)
            self.conn.close()


class _Ticket:
    """One request's state, shared by the awaiting caller and the request thread.

    ``child`` is set while the request is in flight; a caller that gives up marks the
    ticket ``abandoned`` and, if it is in flight, kills that child, which ends the request
    thread's wait at once (it sees the pipe close and replaces the child).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.abandoned = False
        self.child: _Child | None = None

    def start(self, child: _Child) -> bool:
        """Mark in flight on ``child``; False when the caller has already given up."""
        with self._lock:
            if self.abandoned:
                return False
            self.child = child
            return True

    def finish(self) -> None:
        with self._lock:
            self.child = None

    def abandon(self) -> None:
        with self._lock:
            self.abandoned = True
            child = self.child
        if child is not None:
            # A signal only: the request thread joins the process and closes the pipe.
            # Should the request end in the meantime, the child dies idle and the next
            # request replaces it (_ready_child checks is_alive).
            child.process.kill()


class Converter:
    """Converts documents and chunks Markdown through the docling child process."""

    def __init__(
        self,
        *,
        timeout: float,
        max_tokens: int,
        nice: int = 0,
        limits: ConvertLimits | None = None,
    ) -> None:
        self.timeout = timeout
        self.max_tokens = max_tokens
        self.limits = limits or ConvertLimits()
        self.nice = nice  # the child's CPU nice value: conversion is background work
        self._lock = threading.Lock()
        self._threads = ThreadPoolExecutor(max_workers=1, thread_name_prefix="docling-rpc")
        self._child: _Child | None = None
        self._closed = False
        self.starts = 0  # child processes started so far (tests and logs read it)
        self._in_flight: _Ticket | None = None

    @property
    def pid(self) -> int | None:
        """The current child's process id, if one is running."""
        child = self._child
        return child.process.pid if child is not None else None

    # -- the child's life ------------------------------------------------------------------

    def _spawn(self) -> _Child:
        self._child = _Child(self.max_tokens, self.nice, self.limits)
        self.starts += 1
        return self._child

    def _ready_child(self) -> _Child:
        if self._closed:
            raise ConversionFailed("The document converter is shut down (the worker is stopping).")
        child = self._child
        if child is None or not child.process.is_alive():
            if child is not None:
                child.kill()
            child = self._spawn()
        try:
            child.wait_ready(START_TIMEOUT)
        except ConversionFailed:
            child.kill()
            self._child = None
            if self._closed:
                raise ConversionFailed(
                    "The document converter was shut down while starting (the worker is stopping)."
                ) from None
            raise
        return child

    def _replace(self, child: _Child) -> None:
        """Kill a child and start the next one now, so its import overlaps the wait."""
        child.kill()
        self._child = None
        if not self._closed:
            self._spawn()

    # -- requests --------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """True while a request is in flight on the child (tests and logs read it)."""
        return self._in_flight is not None

    def _request(self, message: tuple[Any, ...], what: str, ticket: _Ticket) -> Any:
        with self._lock:
            child = self._ready_child()
            if not ticket.start(child):
                raise ConversionFailed(f"Converting {what} was cancelled before it started.")
            self._in_flight = ticket
            try:
                return self._exchange(child, message, what, ticket)
            finally:
                self._in_flight = None
                ticket.finish()

    def _exchange(self, child: _Child, message: tuple[Any, ...], what: str, ticket: _Ticket) -> Any:
        try:
            child.conn.send(message)
            answered = self._wait_answer(child)
        except (OSError, EOFError):
            answered = True  # the recv below reports the dead child
        if not answered:
            self._replace(child)
            raise StageTimeout(
                f"Converting {what} took longer than {self.timeout:g} s and was stopped. "
                "Split the document into smaller files, or raise SHIELD_CONVERT_TIMEOUT."
            )
        try:
            kind, payload = child.conn.recv()
        except (EOFError, OSError):
            reason = child.exit_reason()
            self._replace(child)
            if ticket.abandoned:
                log.info("Stopped converting %s: its job no longer waits for it.", what)
                raise ConversionFailed(f"Converting {what} was cancelled.") from None
            if self._closed:
                raise ConversionFailed(
                    f"Converting {what} was interrupted: the worker is stopping."
                ) from None
            if self.limits.memory_mb and child.died_of_memory():
                raise self._out_of_memory(what) from None
            raise ConversionFailed(
                f"The converter crashed on {what} ({reason}). The file is probably "
                "corrupt or malformed; open and re-save it, or export it to PDF, and "
                "ingest it again."
            ) from None
        if kind == "refused":  # the child's own message, written for the person
            raise ConversionFailed(payload)
        if kind == "memory":
            self._replace(child)  # it exits by itself; its successor starts loading now
            raise self._out_of_memory(what)
        if kind != "ok":
            raise ConversionFailed(
                f"Could not convert {what}: {payload}. Check that the file opens in its usual "
                "application and is not damaged or password-protected."
            )
        return payload

    def _wait_answer(self, child: _Child) -> bool:
        """Wait up to the timeout for the child's answer, sampling its memory meanwhile."""
        deadline = time.monotonic() + self.timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if child.conn.poll(min(left, _SAMPLE_SECONDS)):
                return True
            child.sample_memory()

    def _out_of_memory(self, what: str) -> ConversionFailed:
        return ConversionFailed(
            f"Converting {what} needed more memory than the converter may use "
            f"({self.limits.memory_mb} MiB beyond what it needs to start, "
            "SHIELD_CONVERT_MAX_MEMORY_MB) and was stopped. The document is too large to "
            "convert in one piece, or is built to exhaust memory: split it into smaller "
            "files, or raise the limit."
        )

    async def _call(self, message: tuple[Any, ...], what: str) -> Any:
        ticket = _Ticket()
        try:
            return await self._in_thread(self._request, message, what, ticket)
        except asyncio.CancelledError:
            # The thread keeps running after the await is cancelled; stop its work too.
            ticket.abandon()
            raise

    async def _in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise ConversionFailed("The document converter is shut down (the worker is stopping).")
        return await asyncio.get_running_loop().run_in_executor(self._threads, fn, *args)

    async def convert(self, data: bytes, filename: str, doc_type: DocType) -> Converted:
        """Convert and chunk one document whose type was already checked by content."""
        chunks, title, converter, chunk_seconds = await self._call(
            ("convert", data, filename, doc_type.value), repr(filename)
        )
        if not chunks:
            raise ConversionFailed(
                f"{filename!r} converted to no text ({converter}). A PDF of scanned pages "
                "needs OCR first (this server reads only embedded text); otherwise the "
                "document is empty."
            )
        return Converted(
            chunks=list(chunks), title=title, converter=converter, chunk_seconds=chunk_seconds
        )

    async def chunk_markdown(self, markdown: str, name: str) -> list[Chunk]:
        """Chunks of a Markdown text (a crawled page); empty text gives no chunks."""
        if not markdown.strip():
            return []
        chunks, _title, _converter, _seconds = await self._call(
            ("markdown", markdown, name), repr(name)
        )
        return list(chunks)

    def _warm_up(self) -> None:
        with self._lock:
            self._ready_child()

    async def warm_up(self) -> None:
        """Start the child and wait until docling is loaded (optional: first use does it)."""
        await self._in_thread(self._warm_up)

    def _close(self) -> None:
        self._closed = True
        child = self._child
        if child is not None:
            # Nothing in the child is worth saving: stopping it ends any conversion, and
            # a request waiting on it gets "interrupted: the worker is stopping".
            child.kill()
        with self._lock:
            # A request that lost its child meanwhile may have started a replacement.
            if self._child is not None and self._child is not child:
                self._child.kill()
            self._child = None
        self._threads.shutdown(wait=False, cancel_futures=True)

    async def aclose(self) -> None:
        await asyncio.to_thread(self._close)
