"""ingest_chunks: batches, counts, skip-unchanged, stale removal, cancellation between batches."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from typing import Any

import pytest

from knowledge.service import Document, KnowledgeService
from knowledge.validation import check_metadata
from orchestrator.errors import JobCancelled
from orchestrator.pipeline.context import SOURCE_LOCKS, JobContext
from orchestrator.pipeline.convert.chunking import Chunk
from orchestrator.pipeline.ingest import BATCH, MAX_TITLE_CHARS, ingest_chunks
from orchestrator.shared_locks import held_names
from orchestrator_client.models import Progress

MakeContext = Callable[..., tuple[JobContext, Any]]


def _chunks(n: int, prefix: str = "Passage") -> list[Chunk]:
    return [Chunk(f"{prefix} number {i} about harbour tides.", ["Tides"]) for i in range(n)]


async def test_chunks_are_stored_in_batches_with_progress(
    make_context: MakeContext, service: KnowledgeService
) -> None:
    ctx, recorder = make_context()
    chunks = _chunks(BATCH + 5)
    counts = await ingest_chunks(
        ctx, chunks, collection="tides", source="s1", title="T", metadata={"k": 1}
    )
    assert (counts.stored, counts.skipped) == (BATCH + 5, 0)
    assert await service.store.count("tides") == BATCH + 5
    done = [(p.done, p.total) for p in recorder.progress if p.stage == "embedding"]
    assert done == [(0, BATCH + 5), (BATCH, BATCH + 5), (BATCH + 5, BATCH + 5)]


async def test_the_same_chunks_again_are_all_skipped(
    make_context: MakeContext, service: KnowledgeService
) -> None:
    ctx, _ = make_context()
    chunks = _chunks(10)
    await ingest_chunks(ctx, chunks, collection=None, source="s1", title=None, metadata={})
    again = await ingest_chunks(ctx, chunks, collection=None, source="s1", title=None, metadata={})
    assert (again.stored, again.skipped, again.removed) == (0, 10, 0)
    # The same text from another source is another passage: stored, not skipped.
    other = await ingest_chunks(ctx, chunks, collection=None, source="s2", title=None, metadata={})
    assert (other.stored, other.skipped) == (10, 0)
    assert await service.store.count("docs") == 20


async def test_a_text_repeated_in_one_document_is_stored_once(
    make_context: MakeContext, service: KnowledgeService
) -> None:
    ctx, _ = make_context()
    chunks = [Chunk("Repeated footer text."), Chunk("Body."), Chunk("Repeated footer text.")]
    counts = await ingest_chunks(ctx, chunks, collection=None, source="s", title=None, metadata={})
    assert (counts.stored, counts.skipped) == (2, 1)
    assert await service.store.count("docs") == 2


async def test_changed_text_removes_only_that_sources_old_passages(
    make_context: MakeContext, service: KnowledgeService
) -> None:
    ctx, _ = make_context()
    await ingest_chunks(ctx, _chunks(4), collection=None, source="a", title=None, metadata={})
    await ingest_chunks(ctx, _chunks(3), collection=None, source="b", title=None, metadata={})
    new = _chunks(2) + _chunks(1, prefix="Revised")
    counts = await ingest_chunks(ctx, new, collection=None, source="a", title=None, metadata={})
    assert (counts.stored, counts.skipped, counts.removed) == (1, 2, 2)
    assert await service.store.count("docs") == 3 + 3
    assert await service.store.source_ids("docs", "b") != set()


async def test_cancel_stops_between_batches(
    make_context: MakeContext, service: KnowledgeService
) -> None:
    ctx, recorder = make_context()
    stored_batches = 0

    async def report(progress: Any) -> None:
        nonlocal stored_batches
        if progress.done:
            stored_batches += 1
            recorder.cancel = True  # someone cancels while the first batch is stored

    ctx.report = report
    with pytest.raises(JobCancelled):
        await ingest_chunks(
            ctx, _chunks(BATCH * 3), collection=None, source="s", title=None, metadata={}
        )
    assert stored_batches == 1
    assert await service.store.count("docs") == BATCH


async def test_pipeline_metadata_wins_over_the_request(
    make_context: MakeContext, service: KnowledgeService
) -> None:
    ctx, _ = make_context(job_id="job-7")
    await ingest_chunks(
        ctx,
        [Chunk("The lock keeper opens the gates at high water.", ["Canal"], 3)],
        collection=None,
        source="canal.pdf",
        title="Canal Guide",
        metadata={"source": "spoofed", "team": "waterways"},
    )
    hit = (await service.find("lock gates", limit=1)).results[0]
    assert hit.metadata["source"] == "canal.pdf"
    assert hit.metadata["team"] == "waterways"
    assert (hit.metadata["title"], hit.metadata["page"], hit.metadata["job_id"]) == (
        "Canal Guide",
        3,
        "job-7",
    )


def _ids(service: KnowledgeService, chunks: list[Chunk], source: str) -> set[str]:
    return {service.document_id(Document(c.text, {"source": source}), "docs") for c in chunks}


async def test_two_jobs_on_one_source_take_turns_and_the_last_wins_whole(
    make_context: MakeContext, service: KnowledgeService
) -> None:
    """Two versions of one source stored at once (two jobs in one worker).

    Old has two batches and pauses after its first; New starts meanwhile. Interleaved, New
    would delete Old's first batch as stale and Old, finishing, would delete New's passages:
    the source would end up as half of Old. Taking turns, whichever finishes last is stored
    whole and nothing of the other remains.
    """
    old, new = _chunks(BATCH + 3, prefix="Old"), _chunks(5, prefix="New")
    old_paused, release, new_waiting = asyncio.Event(), asyncio.Event(), asyncio.Event()
    finished: list[str] = []

    async def old_report(progress: Progress) -> None:
        if progress.stage == "embedding" and progress.done == BATCH:
            old_paused.set()
            await release.wait()

    async def new_report(progress: Progress) -> None:
        if progress.stage == "waiting":
            new_waiting.set()

    async def run(name: str, chunks: list[Chunk], report: Any) -> None:
        ctx, _ = make_context(job_id=name)
        ctx.report = report
        await ingest_chunks(ctx, chunks, collection=None, source="same", title=None, metadata={})
        finished.append(name)

    old_job = asyncio.create_task(run("old", old, old_report))
    await old_paused.wait()
    new_job = asyncio.create_task(run("new", new, new_report))
    # Either New runs to its end at once (no turns) or it waits for Old (turns); no clock.
    waiting = asyncio.create_task(new_waiting.wait())
    await asyncio.wait({new_job, waiting}, return_when=asyncio.FIRST_COMPLETED)
    release.set()
    await asyncio.gather(old_job, new_job)
    waiting.cancel()

    last = {"old": old, "new": new}[finished[-1]]
    assert await service.store.source_ids("docs", "same") == _ids(service, last, "same")
    assert finished == ["old", "new"]


async def test_source_locks_are_dropped_when_no_job_uses_them(make_context: MakeContext) -> None:
    ctx, _ = make_context()
    await ingest_chunks(ctx, _chunks(2), collection=None, source="gone", title=None, metadata={})
    gc.collect()
    assert not [name for name in held_names(SOURCE_LOCKS) if name.endswith("\x00gone")]


async def test_metadata_at_the_request_limits_plus_the_pipelines_keys_is_stored(
    make_context: MakeContext, service: KnowledgeService
) -> None:
    """A request's metadata is held to the limits where it comes in; what the pipeline adds
    (its keys, a site's <title> and headings) must not push a valid request over them."""
    ctx, _ = make_context()
    metadata = {f"k{i}": "v" * 40 for i in range(250)}  # 250 keys, ~13 KB: within the limits
    check_metadata("metadata", metadata)
    huge = "A title a site made very long. " * 700  # ~21 KB
    chunks = [Chunk(text="Tides rise twice a day.", headings=[huge, "Tides"])]
    counts = await ingest_chunks(
        ctx,
        chunks,
        collection=None,
        source="https://example.com/" + "p" * 1000,
        title=huge,
        metadata=metadata,
    )
    assert counts.stored == 1
    found = await service.find("tides", limit=1)
    stored = found.results[0].metadata
    assert len(stored["title"]) == MAX_TITLE_CHARS and stored["headings"][1] == "Tides"
    assert stored["k249"] == "v" * 40
