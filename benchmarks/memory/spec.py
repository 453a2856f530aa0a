"""The servers of the memory suite: ``shield-mcp serve`` through ``launcher.py``, per embedder.

Every server is the embedded default over streamable HTTP (in-process orchestrator,
qdrant-edge, the local ONNX model) on a fresh data dir, with the launcher's counter of
embedded texts; ``legacy`` also runs the model as it ran before its memory was bounded.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import httpx

from benchmarks.ingestion.client import shield_ingest_spec
from benchmarks.memory.launcher import EMBEDDER_ENV, parse_counter
from benchmarks.servers import RunningServer, ServerSpec, shield_command

EMBEDDERS = {
    "bounded": "this checkout's embedder (batches bounded by padded tokens, no memory pattern)",
    "legacy": "the embedder as before (batches by count, onnxruntime's memory pattern)",
}
MIB = 1024


def spec(embedder: str, data: Path, roots: list[Path]) -> ServerSpec:
    env = {EMBEDDER_ENV: embedder}
    base = shield_ingest_spec(data, roots, env)
    prefix = shield_command()
    assert base.http_argv[: len(prefix)] == prefix
    launcher = [sys.executable, "-m", "benchmarks.memory.launcher"]
    return dataclasses.replace(
        base, name=f"shield-{embedder}", http_argv=[*launcher, *base.http_argv[len(prefix) :]]
    )


def status_kib(pid: int, field: str) -> int:
    """A ``/proc/<pid>/status`` field in KiB (the process alone, not its children)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def memory(server: RunningServer) -> dict[str, float]:
    """RSS in MiB: the process tree; the main process alone, its peak, and its anonymous
    memory (heap, onnxruntime's arena) apart from mapped files (the engine's segments)."""
    pid = server.pid
    return {
        "tree_mib": server.rss_kib() / MIB,
        "main_mib": status_kib(pid, "VmRSS") / MIB,
        "main_peak_mib": status_kib(pid, "VmHWM") / MIB,
        "main_anon_mib": status_kib(pid, "RssAnon") / MIB,
        "main_file_mib": status_kib(pid, "RssFile") / MIB,
    }


def embedded_texts(server: RunningServer) -> float | None:
    base = server.url.rsplit("/mcp", 1)[0]
    return parse_counter(httpx.get(f"{base}/metrics", timeout=30).text)
