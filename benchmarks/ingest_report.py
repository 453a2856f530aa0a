"""Figures, targets, the table, and ingest-latest.{json,md} for the ingestion benchmark.

Nothing here fails a run: a target is reported as met, not met, or n/a (not measured).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.report import (
    Target,
    fmt,
    get,
    note_busy_phases,
    ratio,
    render_markdown,
    render_text,
    write_files,
)

Results = dict[str, Any]
ACCEPT_TOOLS = ("crawl_web", "ingest_doc")
PCT = ("p50", "p99")


def percentiles(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {"n": 0}
    a = np.asarray(samples, dtype=np.float64)
    return {
        "n": len(samples),
        "p50": float(np.percentile(a, 50)),
        "p90": float(np.percentile(a, 90)),
        "p99": float(np.percentile(a, 99)),
        "mean": float(a.mean()),
        "max": float(a.max()),
    }


def rates(run: dict[str, Any], unit: str) -> dict[str, Any]:
    """Per-second rates of a throughput run (``unit``: "pages" or "documents")."""
    seconds = run.get("seconds") or 0.0
    out = dict(run)
    if seconds > 0:
        out[f"{unit}_per_s"] = run.get(unit, 0) / seconds
        out["chunks_per_s"] = run.get("chunks", 0) / seconds
    return out


def targets(results: Results) -> list[Target]:
    clients = results["meta"]["settings"]["clients"]
    out = [
        Target(
            f"{name} accept p99, {clients} clients, {label} (ms)",
            get(results, "accept", key, "stats_ms", name, "p99"),
            50.0,
            higher_is_better=False,
            unit=" ms",
        )
        for key, label in (("many", "closed loop"), ("paced", "paced 1 call/s each"))
        for name in ACCEPT_TOOLS
    ]
    us = get(results, "breaker", "client", "stats_us", "p99")
    out.append(
        Target(
            "breaker fast-fail p99, OrchestratorClient (ms)",
            None if us is None else us / 1000,
            1.0,
            higher_is_better=False,
            unit=" ms",
        )
    )
    tp = results.get("throughput", {})
    for part in ("site", "docs"):
        server = get(tp, part, "server", "chunks_per_s")
        out.append(
            Target(
                f"{part}: server chunks/s ÷ raw model",
                ratio(server, get(results, "raw_model", part, "chunks_per_s")),
                0.7,
                higher_is_better=True,
            )
        )
        out.append(
            Target(
                f"{part}: server ÷ naive sequential (chunks/s)",
                ratio(server, get(tp, part, "naive", "chunks_per_s")),
                2.0,
                higher_is_better=True,
            )
        )
    return out


def _pair(node: Any, path: tuple[str, ...], keys: tuple[str, ...], digits: int = 1) -> str:
    return " / ".join(fmt(get(node, *path, key), digits) for key in keys)


def table(results: Results) -> list[list[str]]:
    rows = [["measure", "shield", "reference", "shield ÷ reference"]]
    many = results["meta"]["settings"]["clients"]
    for name in ACCEPT_TOOLS:
        for label, key in (
            ("1 client, idle server", "one"),
            (f"{many} clients, closed loop", "many"),
            (f"{many} clients, paced 1 call/s each", "paced"),
        ):
            s = ("accept", key, "stats_ms", name)
            rows.append(
                [f"{name} accept p50 / p99, {label} (ms)", _pair(results, s, PCT, 2), "", ""]
            )
    for key, label in (("many", "closed loop"), ("paced", "paced")):
        rows.append(
            [
                f"calls accepted per second, {many} clients, {label}",
                fmt(get(results, "accept", key, "accepted_per_s")),
                "",
                "",
            ]
        )
    c = ("breaker", "client")
    refused = get(results, *c, "opening_us", "p50")
    rows.append(
        [
            "open breaker, OrchestratorClient.get_job p50 / p99 (µs) "
            "[ref: refused connection, breaker closed, p50]",
            _pair(results, (*c, "stats_us"), PCT),
            fmt(refused),
            fmt(ratio(get(results, *c, "stats_us", "p50"), refused), 3),
        ]
    )
    m = ("breaker", "mcp")
    opening = get(results, *m, "opening_ms", "p50")
    rows.append(
        [
            "open breaker, MCP get_job_status p50 / p99 (ms) "
            "[ref: the 5 calls that opened it, p50]",
            _pair(results, (*m, "stats_ms"), PCT, 2),
            fmt(opening, 2),
            fmt(ratio(get(results, *m, "stats_ms", "p50"), opening), 2),
        ]
    )
    tp = results.get("throughput", {})
    for part, unit in (("site", "pages"), ("docs", "documents")):
        srv, nai = (part, "server"), (part, "naive")
        rows.append(
            [
                f"{part}: {unit} / chunks / seconds [ref: naive sequential]",
                _pair(tp, srv, (unit, "chunks", "seconds")),
                _pair(tp, nai, (unit, "chunks", "seconds")),
                "",
            ]
        )
        for rate in (f"{unit}_per_s", "chunks_per_s"):
            rows.append(
                [
                    f"{part}: {rate.replace('_per_s', '/s')} [ref: naive sequential]",
                    fmt(get(tp, *srv, rate), 2),
                    fmt(get(tp, *nai, rate), 2),
                    fmt(ratio(get(tp, *srv, rate), get(tp, *nai, rate)), 2),
                ]
            )
        raw = get(results, "raw_model", part, "chunks_per_s")
        batch = results.get("raw_model", {}).get(part, {}).get("best_batch", "?")
        rows.append(
            [
                f"{part}: chunks/s [ref: raw model on the same chunks, batch {batch}]",
                fmt(get(tp, *srv, "chunks_per_s"), 2),
                fmt(raw, 2),
                fmt(ratio(get(tp, *srv, "chunks_per_s"), raw), 2),
            ]
        )
    return rows


def markdown(results: Results) -> str:
    meta = results["meta"]
    run_line = (
        f"Run {meta['started']} on {meta['machine']} ({meta.get('duration_s', 0):.0f} s); "
        f"settings: {json.dumps(meta['settings'], sort_keys=True)}."
    )
    return render_markdown(table(results), results, run_line)


def text_table(results: Results) -> str:
    return render_text(table(results), results)


def write(results: Results, out_dir: Path) -> tuple[Path, Path]:
    results["targets"] = [t.as_dict() for t in targets(results)]
    note_busy_phases(results)
    paths = (out_dir / "ingest-latest.json", out_dir / "ingest-latest.md")
    write_files(results, markdown(results), *paths)
    return paths
