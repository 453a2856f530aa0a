"""Statistics, targets and the written results (JSON + markdown table).

No assertion here fails a run: a target is reported as met or not met.
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


def latency_stats(samples_ms: list[float]) -> dict[str, float]:
    a = np.asarray(samples_ms, dtype=np.float64)
    return {
        "n": len(samples_ms),
        "p50_ms": float(np.percentile(a, 50)),
        "p90_ms": float(np.percentile(a, 90)),
        "p99_ms": float(np.percentile(a, 99)),
        "mean_ms": float(a.mean()),
        "min_ms": float(a.min()),
        "max_ms": float(a.max()),
    }


def cross_check(results: Results) -> dict[str, dict[str, float]]:
    """Do the peer and shield rank the same texts for the same probe queries?"""
    sv = results["servers"]
    out: dict[str, dict[str, float]] = {}
    for size in results["meta"]["sizes"]:
        key = str(size)
        try:
            a = sv["peer"]["verify"][key]["ranked"]
            b = sv["shield"]["verify"][key]["ranked"]
        except KeyError:
            continue
        pairs = list(zip(a, b, strict=True))
        top1 = sum(1 for x, y in pairs if x[:1] == y[:1] and x) / len(pairs)
        overlap = sum(len(set(x[:10]) & set(y[:10])) / 10 for x, y in pairs) / len(pairs)
        out[key] = {"probes": len(pairs), "top1_agreement": top1, "overlap_at_10": overlap}
    return out


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


def targets(results: Results) -> list[Target]:
    sv = results["servers"]
    out: list[Target] = []
    for size in results["meta"]["sizes"]:
        key = str(size)
        out.append(
            Target(
                f"find p50 @{size}: shield / peer",
                ratio(
                    get(sv, "shield", "find", key, "p50_ms"), get(sv, "peer", "find", key, "p50_ms")
                ),
                0.6,
                higher_is_better=False,
            )
        )
    shield_rate = get(sv, "shield", "store", "chunks_per_s")
    out.append(
        Target(
            "store: shield / raw model",
            ratio(shield_rate, get(results, "raw_model", "chunks_per_s")),
            0.8,
            higher_is_better=True,
        )
    )
    out.append(
        Target(
            "store: shield / peer",
            ratio(shield_rate, get(sv, "peer", "store", "chunks_per_s")),
            2.0,
            higher_is_better=True,
        )
    )
    out.append(
        Target(
            "cold start: shield median",
            get(sv, "shield", "cold_start", "median_s"),
            1.0,
            higher_is_better=False,
            unit=" s",
        )
    )
    return out


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.{digits}f}"


def _row(label: str, results: Results, path: tuple[str, ...], digits: int = 1) -> list[str]:
    sv = results["servers"]
    base, peer, shield = (get(sv, name, *path) for name in ("baseline", "peer", "shield"))
    return [
        label,
        fmt(base, digits),
        fmt(peer, digits),
        fmt(shield, digits),
        fmt(ratio(shield, peer), 2),
        fmt(ratio(shield, base), 2),
    ]


def table(results: Results) -> list[list[str]]:
    rows = [["measure", "baseline (no-op)", "peer", "shield", "shield/peer", "shield/baseline"]]
    for size in results["meta"]["sizes"]:
        for pct in ("p50", "p99"):
            rows.append(
                _row(
                    f"qdrant_find {pct} @{size} chunks (ms)",
                    results,
                    ("find", str(size), f"{pct}_ms"),
                    2,
                )
            )
    first = results["meta"]["sizes"][0]
    for pct in ("p50", "p99"):
        rows.append(
            _row(
                f"qdrant_find {pct} @{first}, repeated query (ms)",
                results,
                ("find", f"repeat@{first}", f"{pct}_ms"),
                2,
            )
        )
    raw = get(results, "raw_model", "chunks_per_s")
    best = get(results, "raw_model", "best_chunks_per_s")
    best_batch = results.get("raw_model", {}).get("best_batch", "?")
    rows.append(_row(f"store @{first} (chunks/s)", results, ("store", "chunks_per_s")))
    batch = results["meta"]["settings"]["batch"]
    rows.append([f"raw int8 model, batch {batch} (chunks/s)", "", "", fmt(raw), "", ""])
    rows.append(
        [f"raw int8 model, best batch ({best_batch}) (chunks/s)", "", "", fmt(best), "", ""]
    )
    if len(results["meta"]["sizes"]) > 1:
        last = results["meta"]["sizes"][-1]
        rows.append(
            _row(
                f"store {first} → {last} (chunks/s)",
                results,
                ("store_to_" + str(last), "chunks_per_s"),
            )
        )
    rows.append(
        _row("cold start, stdio → tools/list, median (s)", results, ("cold_start", "median_s"), 3)
    )
    rows.append(_row("idle RSS after start-up (MiB)", results, ("rss_mib", "idle")))
    rows.append(
        _row(f"idle RSS after the {first}-chunk load (MiB)", results, ("rss_mib", f"after_{first}"))
    )
    if len(results["meta"]["sizes"]) > 1:
        last = results["meta"]["sizes"][-1]
        rows.append(_row(f"idle RSS at {last} chunks (MiB)", results, ("rss_mib", f"at_{last}")))
    return rows


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


def markdown(results: Results) -> str:
    meta = results["meta"]
    run_line = (
        f"Run {meta['started']} on {meta['machine']}; settings: "
        f"{json.dumps(meta['settings'], sort_keys=True)}."
    )
    return render_markdown(table(results), results, run_line)


def text_table(results: Results) -> str:
    return render_text(table(results), results)


def write(results: Results, out_dir: Path) -> tuple[Path, Path]:
    results["targets"] = [t.as_dict() for t in targets(results)]
    results["cross_check"] = cross_check(results)
    note_busy_phases(results)
    waits = results["meta"].get("quiet_waits", [])
    waited = sum(max(0.0, w.get("waited_s", 0) - 1.0) for w in waits)  # 1 s is the sample
    if waited > 2:
        results["meta"]["notes"].append(f"Waited {waited:.0f} s in all for a quiet machine.")
    for size, check in results["cross_check"].items():
        results["meta"]["notes"].append(
            f"Same model, same ranking? @{size}: peer and shield agree on the top hit for "
            f"{check['top1_agreement']:.0%} of {check['probes']} probe queries; their top-10 "
            f"lists overlap {check['overlap_at_10']:.0%}."
        )
    paths = (out_dir / "latest.json", out_dir / "latest.md")
    write_files(results, markdown(results), *paths)
    return paths
