"""Figures, targets, the table, and ingest-latest.{json,md} for the ingestion benchmark.

Nothing here fails a run: a target is reported as met, not met, or n/a (not measured).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.report import Target, get, ratio

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


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.{digits}f}"


def _pair(node: Any, path: tuple[str, ...], keys: tuple[str, ...], digits: int = 1) -> str:
    return " / ".join(_fmt(get(node, *path, key), digits) for key in keys)


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
                _fmt(get(results, "accept", key, "accepted_per_s")),
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
            _fmt(refused),
            _fmt(ratio(get(results, *c, "stats_us", "p50"), refused), 3),
        ]
    )
    m = ("breaker", "mcp")
    opening = get(results, *m, "opening_ms", "p50")
    rows.append(
        [
            "open breaker, MCP get_job_status p50 / p99 (ms) "
            "[ref: the 5 calls that opened it, p50]",
            _pair(results, (*m, "stats_ms"), PCT, 2),
            _fmt(opening, 2),
            _fmt(ratio(get(results, *m, "stats_ms", "p50"), opening), 2),
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
                    _fmt(get(tp, *srv, rate), 2),
                    _fmt(get(tp, *nai, rate), 2),
                    _fmt(ratio(get(tp, *srv, rate), get(tp, *nai, rate)), 2),
                ]
            )
        raw = get(results, "raw_model", part, "chunks_per_s")
        batch = results.get("raw_model", {}).get(part, {}).get("best_batch", "?")
        rows.append(
            [
                f"{part}: chunks/s [ref: raw model on the same chunks, batch {batch}]",
                _fmt(get(tp, *srv, "chunks_per_s"), 2),
                _fmt(raw, 2),
                _fmt(ratio(get(tp, *srv, "chunks_per_s"), raw), 2),
            ]
        )
    return rows


def markdown(results: Results) -> str:
    rows = table(results)
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    lines += ["", "| target | measured | goal | met |", "|---|---|---|---|"]
    for t in results["targets"]:
        met = {True: "**met**", False: "not met", None: "n/a"}[t["met"]]
        lines.append(f"| {t['name']} | {_fmt(t['value'], 2)} | {t['target']} | {met} |")
    meta = results["meta"]
    lines += [
        "",
        f"Run {meta['started']} on {meta['machine']} ({meta.get('duration_s', 0):.0f} s); "
        f"settings: {json.dumps(meta['settings'], sort_keys=True)}.",
    ]
    lines += [f"- {note}" for note in meta["notes"]]
    return "\n".join(lines) + "\n"


def text_table(results: Results) -> str:
    rows = table(results)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        out.append("  ".join(cells))
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    out.append("")
    for t in results["targets"]:
        met = {True: "MET", False: "NOT MET", None: "n/a"}[t["met"]]
        out.append(f"{met:>8}  {t['name']}: {_fmt(t['value'], 2)} (target {t['target']})")
    return "\n".join(out)


def write(results: Results, out_dir: Path) -> tuple[Path, Path]:
    results["targets"] = [t.as_dict() for t in targets(results)]
    waits = results["meta"].get("quiet_waits", [])
    busy = [w["before"] for w in waits if w.get("busy", 0) > 0.15]
    if busy:
        results["meta"]["notes"].append(
            "Other work kept the machine busy (>15 % of its CPU) past the wait before: "
            + ", ".join(busy)
            + ". Those figures are noisy."
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = (out_dir / "ingest-latest.json", out_dir / "ingest-latest.md")
    for path, text in zip(paths, (json.dumps(results, indent=2), markdown(results)), strict=True):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    return paths
