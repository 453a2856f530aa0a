"""The load suite's figures, targets and files (benchmarks/results/load-latest.{json,md})."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.report import Results, Target, fmt, render_markdown, render_text, write_files

JOB_TOOLS = ("crawl_web", "ingest_doc")
ACCEPT_P99_MS = 200.0  # the seed's figure
RSS_GROWTH_PCT = 10.0


def latency(samples: list[float]) -> dict[str, float]:
    """n, p50 / p95 / p99, mean and max of ``samples`` (ms)."""
    if not samples:
        return {"n": 0}
    a = np.asarray(samples, dtype=np.float64)
    return {
        "n": len(samples),
        "p50": float(np.percentile(a, 50)),
        "p95": float(np.percentile(a, 95)),
        "p99": float(np.percentile(a, 99)),
        "mean": float(a.mean()),
        "max": float(a.max()),
    }


def accept_p99(layout: dict[str, Any]) -> float | None:
    """p99 of every crawl_web and ingest_doc answer together: what a caller waits to accept."""
    p99 = layout.get("accept_ms", {}).get("p99")
    return float(p99) if p99 is not None else None


def worst_growth(layout: dict[str, Any]) -> float | None:
    growths = [p["growth_pct"] for p in layout.get("rss", {}).values() if "growth_pct" in p]
    return max(growths) if growths else None


def targets(results: Results) -> list[dict[str, Any]]:
    out = []
    for name, layout in results["layouts"].items():
        if "tools" not in layout:
            continue
        out += [
            Target(f"{name}: errors", float(layout["errors"]), 0, False, unit="").as_dict(),
            Target(
                f"{name}: RSS growth after warm-up (worst process)",
                worst_growth(layout),
                RSS_GROWTH_PCT,
                False,
                unit=" %",
            ).as_dict(),
            Target(
                f"{name}: accept p99 (crawl_web + ingest_doc)",
                accept_p99(layout),
                ACCEPT_P99_MS,
                False,
                unit=" ms",
            ).as_dict(),
        ]
    return out


def _rows(results: Results) -> list[list[str]]:
    rows = [["layout / tool", "calls", "errors", "p50 ms", "p95 ms", "p99 ms", "max ms"]]
    for name, layout in results["layouts"].items():
        for tool, got in sorted(layout.get("tools", {}).items()):
            stats = got["latency_ms"]
            rows.append(
                [
                    f"{name}: {tool}",
                    str(stats.get("n", 0) + got["errors"]),
                    str(got["errors"]),
                    fmt(stats.get("p50")),
                    fmt(stats.get("p95")),
                    fmt(stats.get("p99")),
                    fmt(stats.get("max")),
                ]
            )
    return rows


def _process_rows(results: Results) -> list[str]:
    lines = [
        "",
        "| layout / process | RSS after warm-up MiB | RSS at end MiB | growth | CPU s "
        "| CPU ms/call |",
        "|---|---|---|---|---|---|",
    ]
    for name, layout in results["layouts"].items():
        for proc, rss in layout.get("rss", {}).items():
            cpu = layout.get("cpu", {}).get(proc, {})
            lines.append(
                f"| {name}: {proc} | {fmt(rss.get('warm_mib'))} | {fmt(rss.get('end_mib'))} "
                f"| {fmt(rss.get('growth_pct'))} % | {fmt(cpu.get('seconds'))} "
                f"| {fmt(cpu.get('ms_per_call'), 2)} |"
            )
    cost = results.get("accept_cost", {})
    if cost.get("cpu_ms_per_accept"):
        lines += ["", "| accept path, per ingest_doc (no workers) | CPU ms |", "|---|---|"]
        lines += [f"| {k} | {fmt(v, 2)} |" for k, v in cost["cpu_ms_per_accept"].items()]
        lat = cost.get("latency_ms", {})
        lines.append(
            f"| latency p50 / p99 ms, one session | {fmt(lat.get('p50'))} / {fmt(lat.get('p99'))} |"
        )
    return lines


def markdown(results: Results) -> str:
    cfg = results["meta"]["settings"]
    run_line = (
        f"Run {results['meta']['started']}, {results['meta']['machine']}, "
        f"{cfg['sessions']} sessions × {cfg['calls']} calls at {cfg['rate']}/s each "
        f"({'quick' if cfg['quick'] else 'full'}), "
        f"{results['meta'].get('duration_s', 0):.0f} s; quiet machine: "
        f"{results['meta'].get('quiet')}."
    )
    text = render_markdown(_rows(results), results, run_line)
    return text + "\n".join(_process_rows(results)) + "\n"


def text_table(results: Results) -> str:
    return render_text(_rows(results), results) + "\n" + "\n".join(_process_rows(results))


def write(results: Results, out_dir: Path) -> tuple[Path, Path]:
    results["targets"] = targets(results)
    json_path, md_path = out_dir / "load-latest.json", out_dir / "load-latest.md"
    write_files(results, markdown(results), json_path, md_path)
    return json_path, md_path
