"""Crawl jobs end to end: the local site -> Crawl4AI -> docling chunks -> embeddings -> store."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from knowledge.errors import InvalidInput
from orchestrator.errors import FetchFailed, JobCancelled
from orchestrator.pipeline.config import PipelineConfig
from orchestrator.pipeline.crawl.job import run_crawl, validate_crawl
from orchestrator_client.models import CrawlRequest
from tests.orchestrator.pipeline.conftest import MakeContext
from tests.sites import Site, serve_site


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    with serve_site(pages=40, slow_delay=3.0) as s:
        yield s


@pytest.mark.slow  # 41 pages crawled, chunked and embedded, twice
async def test_crawl_stores_every_page_and_rerun_skips_them(
    site: Site, make_context: MakeContext
) -> None:
    ctx, recorder = make_context(crawl_allow_private=True, crawl_page_timeout=1.0)
    request = CrawlRequest(url=site.url, max_pages=100, max_depth=3, metadata={"crawl": "t1"})
    result = await run_crawl(request, ctx)

    assert result.collection == "docs"
    assert result.pages == 41  # the index and all 40 pages
    assert result.converter == "crawl4ai:http"
    assert result.chunks_stored >= 41
    assert result.chunks_skipped_unchanged == 0
    reasons = {f.url: f.reason for f in result.failed_pages}
    assert reasons == {
        f"{site.url}missing.html": "HTTP 404",
        f"{site.url}forbidden.html": "HTTP 403",
        f"{site.url}slow.html": "timeout after 1 s",
    }
    assert site.offsite_paths == []
    assert recorder.stages() == ["crawling"]
    assert recorder.progress[-1].done == 41
    assert recorder.progress[-1].total == 100

    deep = 37  # three links from the index
    assert site.depth(deep) == 3
    found = await ctx.service.find(site.fact(deep), limit=1)
    hit = found.results[0]
    assert site.fact(deep) in hit.text
    assert hit.metadata["source"] == site.page_url(deep)
    assert hit.metadata["title"] == "Almanac page 37"
    assert hit.metadata["crawl"] == "t1"
    assert hit.metadata["job_id"] == ctx.job_id

    again = await run_crawl(request, ctx)
    assert again.pages == 41
    assert again.chunks_stored == 0
    assert again.chunks_skipped_unchanged == result.chunks_stored


async def test_max_pages_and_depth(site: Site, make_context: MakeContext) -> None:
    ctx, _ = make_context(crawl_allow_private=True, crawl_page_timeout=1.0)
    small = await run_crawl(CrawlRequest(url=site.url, max_pages=3, max_depth=3), ctx)
    assert small.pages == 3
    shallow = await run_crawl(
        CrawlRequest(url=site.page_url(2), max_pages=50, max_depth=1, collection="shallow"), ctx
    )
    assert shallow.collection == "shallow"
    assert shallow.pages == 6  # page 2, its four children and the index it links back to


async def test_private_start_refused_without_the_setting(
    site: Site, make_context: MakeContext
) -> None:
    ctx, _ = make_context()
    before = len(site.requested_paths)
    with pytest.raises(InvalidInput, match="SHIELD_CRAWL_ALLOW_PRIVATE"):
        await run_crawl(CrawlRequest(url=site.url), ctx)
    assert site.requested_paths[before:] == []


async def test_nothing_fetched_fails_the_job(
    site: Site, make_context: MakeContext, dead_port: int
) -> None:
    ctx, _ = make_context(crawl_allow_private=True)
    with pytest.raises(FetchFailed, match="HTTP 404") as gone:
        await run_crawl(CrawlRequest(url=f"{site.url}missing.html"), ctx)
    assert not gone.value.transient
    with pytest.raises(FetchFailed, match="connection failed") as down:
        await run_crawl(CrawlRequest(url=f"http://127.0.0.1:{dead_port}/"), ctx)
    assert down.value.transient


async def test_cancel_stops_the_crawl(site: Site, make_context: MakeContext) -> None:
    ctx, recorder = make_context(crawl_allow_private=True)
    recorder.cancel = True
    with pytest.raises(JobCancelled):
        await run_crawl(CrawlRequest(url=site.url, max_pages=40, max_depth=3), ctx)


async def test_validate_crawl(config: PipelineConfig, tmp_path: Path) -> None:
    allowed = replace(config, crawl_allow_private=True, crawl_max_pages=20)
    await validate_crawl(CrawlRequest(url="http://127.0.0.1:9/", max_pages=20), allowed)
    with pytest.raises(InvalidInput, match="at most 20 pages"):
        await validate_crawl(CrawlRequest(url="http://127.0.0.1:9/", max_pages=21), allowed)
    with pytest.raises(InvalidInput, match="loopback"):
        await validate_crawl(CrawlRequest(url="http://127.0.0.1:9/"), config)

    browser = CrawlRequest(url="http://127.0.0.1:9/", mode="browser")
    missing = replace(allowed, crawl_browser_path=tmp_path / "no-chromium")
    with pytest.raises(InvalidInput, match="SHIELD_CRAWL_BROWSER_PATH"):
        await validate_crawl(browser, missing)
    if shutil.which("chromium") is None:
        with pytest.raises(InvalidInput, match="SHIELD_CRAWL_BROWSER_CDP_URL"):
            await validate_crawl(browser, allowed)
    via_cdp = replace(allowed, crawl_browser_cdp_url="http://127.0.0.1:9222")
    await validate_crawl(browser, via_cdp)
