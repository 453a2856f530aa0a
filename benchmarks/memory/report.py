"""The memory suite's table, targets and notes; ``memory-latest.{json,md}``.

Every ratio is between two figures of the same run. Nothing here fails a run: a target is
met, not met or n/a, and a phase that did not run leaves "—" in its cells.
"""

from __future__ import annotations

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

RSS_LIMIT_MIB = 600.0
GROWTH_LIMIT = 1.02  # "no growth": within 2 % (the allocator's and the engine's noise)
THROUGHPUT_LIMIT = 0.95
SIDES = ("bounded", "legacy")


def _rate(results: Results, side: str) -> float | None:
    """Chunks/s over all passes (total chunks ÷ total seconds)."""
    passes = results.get("store", {}).get(side, {}).get("passes", [])
    seconds = sum(p["seconds"] for p in passes)
    return sum(p["chunks"] for p in passes) / seconds if seconds else None


def _pass(results: Results, side: str, n: int, *path: str) -> float | None:
    passes = results.get("store", {}).get(side, {}).get("passes", [])
    return get(passes[n], *path) if len(passes) > n else None


def _growth(first: list[float | None], second: list[float | None]) -> list[float | None]:
    return [None if a is None or b is None else b - a for a, b in zip(first, second, strict=True)]


def _peak_sampled(results: Results, side: str) -> float | None:
    passes = results.get("store", {}).get(side, {}).get("passes", [])
    return max((p["tree_peak_sampled_mib"] for p in passes), default=None)


def rows(results: Results) -> list[list[str]]:
    chunks = results["meta"]["settings"]["chunks"]
    out = [["measure", "bounded (this checkout)", "legacy (as before)", "bounded ÷ legacy"]]

    def row(label: str, values: list[float | None], digits: int = 1) -> None:
        a, b = values
        out.append([label, fmt(a, digits), fmt(b, digits), fmt(ratio(a, b), 2)])

    def store(*path: str) -> list[float | None]:
        return [get(results.get("store", {}), side, *path) for side in SIDES]

    def passed(n: int, *path: str) -> list[float | None]:
        return [_pass(results, side, n, *path) for side in SIDES]

    def ingested(*path: str) -> list[float | None]:
        return [get(results.get("ingest") or {}, side, *path) for side in SIDES]

    row("server RSS at start (MiB, process tree)", store("rss_start", "tree_mib"))
    row("server RSS after the warm-up store (MiB)", store("rss_after_warmup", "tree_mib"))
    for label, key in (("", "tree_mib"), (", anonymous", "main_anon_mib")):
        first, second = passed(0, "rss_after", key), passed(1, "rss_after", key)
        row(f"server RSS{label} after storing {chunks:,} chunks (MiB)", first)
        row(f"server RSS{label} after storing them again (MiB)", second)
        row(f"growth{label} on the second pass (MiB)", _growth(first, second))
    row(
        "mapped files (the engine's segments) in RSS, first pass (MiB)",
        passed(0, "rss_after", "main_file_mib"),
    )
    row("  ... after the second pass (MiB)", passed(1, "rss_after", "main_file_mib"))
    row("peak RSS of the server process (VmHWM, MiB)", passed(1, "rss_after", "main_peak_mib"))
    row("highest RSS sampled during the passes (MiB)", [_peak_sampled(results, s) for s in SIDES])
    row("store, chunks/s, first pass", passed(0, "chunks_per_s"))
    row("store, chunks/s, second pass", passed(1, "chunks_per_s"))
    row("store, chunks/s, both passes", [_rate(results, s) for s in SIDES])
    row("texts embedded in the second pass", passed(1, "texts_embedded"), 0)
    raw = get(results, "raw_model", "chunks_per_s")
    row("store ÷ the raw model's rate", [ratio(_rate(results, s), raw) for s in SIDES], 2)
    for key, label in (
        ("rss_loaded_mib", "embed only: RSS with the model loaded (MiB)"),
        ("rss_after_mib", "embed only: RSS after the chunks (MiB)"),
        ("peak_mib", "embed only: peak RSS (MiB)"),
    ):
        row(label, [get(results.get("embed_only") or {}, s, key) for s in SIDES])
    row("ingest_doc of the large document: chunks", ingested("chunks"), 0)
    row("ingest_doc: RSS after (MiB, process tree)", ingested("rss_after", "tree_mib"))
    row("ingest_doc: RSS after (MiB, main process)", ingested("rss_after", "main_mib"))
    row("ingest_doc: RSS after round 2 (MiB, tree)", ingested("rss_after_last", "tree_mib"))
    row("ingest_doc: chunks/s (faster round)", ingested("chunks_per_s"))
    return out


def targets(results: Results) -> list[Target]:
    def bounded(n: int, key: str) -> float | None:
        return _pass(results, "bounded", n, "rss_after", key)

    first, second = bounded(0, "tree_mib"), bounded(1, "tree_mib")
    anon = ratio(bounded(1, "main_anon_mib"), bounded(0, "main_anon_mib"))
    rate = ratio(_rate(results, "bounded"), _rate(results, "legacy"))
    return [
        Target("server RSS after the first pass", first, RSS_LIMIT_MIB, False, " MiB"),
        Target("server RSS after the second pass", second, RSS_LIMIT_MIB, False, " MiB"),
        Target("RSS after the second pass ÷ the first", ratio(second, first), GROWTH_LIMIT, False),
        Target("anonymous RSS, second pass ÷ the first", anon, GROWTH_LIMIT, False),
        Target("store chunks/s ÷ the legacy embedder's", rate, THROUGHPUT_LIMIT, True),
    ]


def finish(results: Results, out_dir: Path) -> str:
    """Targets, notes, both files; returns the text table for the console."""
    results["targets"] = [t.as_dict() for t in targets(results)]
    note_busy_phases(results)
    table = rows(results)
    meta = results["meta"]
    run_line = (
        f"Run {meta['started']}, {meta['machine']}, {meta.get('duration_s', 0):.0f} s, "
        f"load {meta['loadavg_start'][0]:.1f} → {meta['loadavg_end'][0]:.1f}."
    )
    write_files(
        results,
        render_markdown(table, results, run_line),
        out_dir / "memory-latest.json",
        out_dir / "memory-latest.md",
    )
    return render_text(table, results)
