"""Entry point of `shield-mcp repair`: mend embedded collections, say what changed."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from knowledge.errors import KnowledgeError
from knowledge.settings import KnowledgeSettings
from knowledge.vectorstore.edge_repair import repair_collections
from shield_common.process import fail, load_settings


async def repair_command(collections: Sequence[str]) -> int:
    settings = load_settings(KnowledgeSettings)
    if settings is None:
        return 2
    if settings.qdrant_url:
        return fail("repair works on the embedded store; unset SHIELD_QDRANT_URL.")
    try:
        reports = await asyncio.to_thread(repair_collections, settings.data_dir, collections)
    except KnowledgeError as exc:
        return fail(str(exc))
    for report in reports:
        state = "repaired" if report.changed else "ok"
        print(f"{report.collection}: {state}, {report.points} passages")
        for pid, source in report.removed.items():
            print(
                f"  removed unreadable passage {pid} (source {source or 'unknown'}): store it again"
            )
        for pid in report.clipped:
            print(f"  clipped metadata nested deeper than the engine keeps: {pid}")
        if report.kept_copy is not None:
            print(
                f"  it did not load and was rebuilt; writes never flushed to disk before it "
                f"broke may be missing; the original is kept at {report.kept_copy}"
            )
    return 0
