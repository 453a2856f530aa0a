"""What both suites' reports share: statistics, targets, the tables, the written files.

Each suite's own ``report.py`` picks its figures and targets; the percentiles, the target
arithmetic, the markdown / text rendering and the (atomic) JSON + markdown writing are
here, once. No assertion here fails a run: a target is reported as met, not met or n/a.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

Results = dict[str, Any]


def percentiles(samples: list[float], suffix: str = "") -> dict[str, float]:
    """Count, p50 / p90 / p99, mean, min and max of ``samples``; ``suffix`` names the unit
    in every key but ``n`` (the search suite writes ``p50_ms``, the ingestion suite ``p50``)."""
    if not samples:
        return {"n": 0}
    a = np.asarray(samples, dtype=np.float64)
    figures = {
        "p50": np.percentile(a, 50),
        "p90": np.percentile(a, 90),
        "p99": np.percentile(a, 99),
        "mean": a.mean(),
        "min": a.min(),
        "max": a.max(),
    }
    return {"n": len(samples)} | {f"{k}{suffix}": float(v) for k, v in figures.items()}


def get(results: Results, *path: str) -> float | None:
    node: Any = results
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return float(node) if isinstance(node, int | float) else None


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


@dataclass(frozen=True)
class Target:
    name: str
    value: float | None  # the measured ratio or figure
    limit: float
    higher_is_better: bool
    unit: str = "x"

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        return self.value >= self.limit if self.higher_is_better else self.value <= self.limit

    def as_dict(self) -> dict[str, Any]:
        op = ">=" if self.higher_is_better else "<="
        return {
            "name": self.name,
            "value": self.value,
            "target": f"{op} {self.limit}{self.unit}",
            "met": self.met,
        }


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.{digits}f}"


def render_markdown(rows: list[list[str]], results: Results, run_line: str) -> str:
    """The figures table, the targets table, then the run line and the notes."""
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    lines += ["", "| target | measured | goal | met |", "|---|---|---|---|"]
    for t in results["targets"]:
        met = {True: "**met**", False: "not met", None: "n/a"}[t["met"]]
        lines.append(f"| {t['name']} | {fmt(t['value'], 2)} | {t['target']} | {met} |")
    lines += ["", run_line]
    lines += [f"- {note}" for note in results["meta"]["notes"]]
    return "\n".join(lines) + "\n"


def render_text(rows: list[list[str]], results: Results) -> str:
    """The figures as aligned columns, then one line per target."""
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
        out.append(f"{met:>8}  {t['name']}: {fmt(t['value'], 2)} (target {t['target']})")
    return "\n".join(out)


def note_busy_phases(results: Results) -> None:
    waits = results["meta"].get("quiet_waits", [])
    busy = [w["before"] for w in waits if w.get("busy", 0) > 0.15]
    if busy:
        results["meta"]["notes"].append(
            "Other work kept the machine busy (>15 % of its CPU) past the wait before: "
            + ", ".join(busy)
            + ". Those figures are noisy."
        )


def write_files(results: Results, markdown_text: str, json_path: Path, md_path: Path) -> None:
    json_path.parent.mkdir(parents=True, exist_ok=True)
    for path, text in ((json_path, json.dumps(results, indent=2)), (md_path, markdown_text)):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
