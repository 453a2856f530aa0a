"""The search suite's figures, targets, table and latest.{json,md}.

Nothing here fails a run: a target is reported as met, not met, or n/a (not measured).
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.report import (
    Results,
    Target,
    fmt,
    get,
    note_busy_phases,
    ratio,
    render_markdown,
    render_text,
    write_files,
)


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
