"""A crawl job: validate on the request path, then crawl -> chunk -> embed -> store in a worker.

The three stages run at once, joined by small bounded queues: while one page is embedded
(the slowest stage, and the physical limit), the next is chunked in the converter's child
process and further ones are fetched. The bounds keep memory flat on a large site and
make the crawler wait when embedding falls behind.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal

from knowledge.errors import InvalidInput
from orchestrator.errors import FetchFailed
from orchestrator.pipeline.config import PipelineConfig
from orchestrator.pipeline.context import JobContext
from orchestrator.pipeline.crawl.crawler import BROWSER_MISSING, CrawlPlan, Page, crawl_pages
from orchestrator.pipeline.graph_feed import GraphFeed
from orchestrator.pipeline.netsafety import check_url
from orchestrator_client.models import CrawlRequest, JobResult, PageFailure, Progress

QUEUE_PAGES = 8  # pages fetched ahead of chunking, and chunked ahead of embedding
CONVERTER_NAME = "crawl4ai:http"
# Failure reasons that say the network, not the request, was at fault: worth a retry.
_TRANSIENT_PREFIXES = ("timeout", "connection failed", "HTTP 5", "HTTP 429")


def _mode(request: CrawlRequest, config: PipelineConfig) -> Literal["http", "browser"]:
    return request.mode or config.crawl_mode


async def validate_crawl(request: CrawlRequest, config: PipelineConfig) -> None:
    """Checks cheap enough for the request path; InvalidInput says what to change."""
    if request.max_pages > config.crawl_max_pages:
        raise InvalidInput(
            f"max_pages is {request.max_pages}; this server crawls at most "
            f"{config.crawl_max_pages} pages per job (SHIELD_CRAWL_MAX_PAGES)."
        )
    if _mode(request, config) == "browser":
        from orchestrator.pipeline.crawl.browser import find_browser

        path = config.crawl_browser_path
        if path is not None and not path.is_file():
            raise InvalidInput(
                f"SHIELD_CRAWL_BROWSER_PATH is {str(path)!r}, which is not a file; point it "
                "at a Chromium executable such as /usr/bin/chromium."
            )
        if config.crawl_browser_cdp_url is None and find_browser(path) is None:
            raise InvalidInput(BROWSER_MISSING)
    await check_url(request.url, allow_private=config.crawl_allow_private)


def plan_for(request: CrawlRequest, config: PipelineConfig) -> CrawlPlan:
    mode = _mode(request, config)
    return CrawlPlan(
        start_url=request.url,
        max_pages=min(request.max_pages, config.crawl_max_pages),
        max_depth=request.max_depth,
        allow_private=config.crawl_allow_private,
        page_timeout=config.crawl_page_timeout,
        base_dir=config.crawl4ai_dir,
        allowed_domains=list(request.allowed_domains or []),
        mode=mode,
        cdp_url=config.crawl_browser_cdp_url,
        browser_path=config.crawl_browser_path,
    )


@dataclass
class _Tally:
    pages: int = 0
    stored: int = 0
    skipped: int = 0
    updated: int = 0
    removed: int = 0
    failed: list[PageFailure] = field(default_factory=list)


_DONE = None  # end-of-stream marker on the queues


async def _fetch_stage(
    plan: CrawlPlan, ctx: JobContext, out: asyncio.Queue[Page | None], tally: _Tally
) -> None:
    # Closed here, not whenever the event loop gets to it: a cancelled or failed job must
    # have stopped its browser (browser mode) by the time the job ends.
    async with contextlib.aclosing(crawl_pages(plan)) as items:
        while True:
            # The wait for the next page is the fetch stage's time (the crawler fetches
            # ahead on its own; waiting for room on the queue is not fetching).
            with ctx.stages.stage("fetch"):
                item = await anext(items, None)
            if item is None:
                break
            if isinstance(item, PageFailure):
                tally.failed.append(item)
                continue
            await out.put(item)
            await ctx.checkpoint()
    await out.put(_DONE)


async def _chunk_stage(
    ctx: JobContext,
    pages: asyncio.Queue[Page | None],
    out: asyncio.Queue[tuple[Page, list[Any]] | None],
) -> None:
    while (page := await pages.get()) is not None:
        with ctx.stages.stage("chunk"):
            chunks = await ctx.converter.chunk_markdown(page.markdown, page.url)
        await out.put((page, chunks))
    await out.put(_DONE)


async def _store_stage(
    request: CrawlRequest,
    ctx: JobContext,
    collection: str,
    chunked: asyncio.Queue[tuple[Page, list[Any]] | None],
    tally: _Tally,
    total: int,
    feed: GraphFeed,
) -> None:
    from orchestrator.pipeline.ingest import ingest_chunks

    while (item := await chunked.get()) is not None:
        page, chunks = item
        await ctx.checkpoint()
        if chunks:
            counts = await ingest_chunks(
                ctx,
                chunks,
                collection=collection,
                source=page.url,
                title=page.title,
                metadata=request.metadata,
                report_progress=False,  # one "crawling" progress for the job, not per page
            )
            tally.stored += counts.stored
            tally.skipped += counts.skipped
            tally.updated += counts.updated
            tally.removed += counts.removed
            tally.pages += 1
            await feed.add(page.url, page.title, chunks, counts.vectors)
        else:
            tally.failed.append(PageFailure(url=page.url, reason="no text content"))
        await ctx.report(Progress(stage="crawling", done=tally.pages, total=total))


async def _run_all(stages: list[Coroutine[Any, Any, None]]) -> None:
    """Run the stages together; the first failure stops the others and is raised as is."""
    tasks = [asyncio.create_task(stage) for stage in stages]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _nothing_fetched(url: str, failed: list[PageFailure]) -> FetchFailed:
    if not failed:
        return FetchFailed(f"No page with text was found at {url}; check the URL.")
    reasons = "; ".join(f"{f.url}: {f.reason}" for f in failed[:3])
    transient = any(f.reason.startswith(_TRANSIENT_PREFIXES) for f in failed)
    return FetchFailed(
        f"No page of {url} could be fetched ({reasons}). "
        + ("The site may be down or slow; try again later." if transient else "Check the URL."),
        transient=transient,
    )


async def run_crawl(request: CrawlRequest, ctx: JobContext) -> JobResult:
    """Crawl, chunk, embed and store; pages that fail are listed, not fatal (unless all do)."""
    config = ctx.config
    # Checked again here: the job may run long after it was accepted, on another machine.
    await check_url(request.url, allow_private=config.crawl_allow_private)
    plan = plan_for(request, config)
    collection = request.collection or ctx.service.default_collection
    tally = _Tally()
    await ctx.report(Progress(stage="crawling", done=0, total=plan.max_pages))
    pages: asyncio.Queue[Page | None] = asyncio.Queue(QUEUE_PAGES)
    chunked: asyncio.Queue[tuple[Page, list[Any]] | None] = asyncio.Queue(QUEUE_PAGES)
    feed = GraphFeed(ctx, collection)
    await _run_all(
        [
            _fetch_stage(plan, ctx, pages, tally),
            _chunk_stage(ctx, pages, chunked),
            _store_stage(request, ctx, collection, chunked, tally, plan.max_pages, feed),
        ]
    )
    if tally.pages == 0:
        raise _nothing_fetched(request.url, tally.failed)
    return JobResult(
        collection=collection,
        pages=tally.pages,
        chunks_stored=tally.stored,
        chunks_skipped_unchanged=tally.skipped,
        chunks_metadata_updated=tally.updated,
        chunks_removed_stale=tally.removed,
        converter=CONVERTER_NAME if plan.mode == "http" else "crawl4ai:browser",
        failed_pages=tally.failed,
        lightrag=await feed.finish(),
    )
