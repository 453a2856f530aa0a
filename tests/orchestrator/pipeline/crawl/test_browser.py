"""Browser mode for real: Debian's Chromium, Crawl4AI's Playwright strategy, a JS-built site.

The site below writes its text and its only link with JavaScript, so the HTTP crawler sees
neither; the browser must run the scripts to find them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from knowledge.errors import InvalidInput
from orchestrator.errors import FetchFailed, JobCancelled
from orchestrator.pipeline.convert.converter import Converter
from orchestrator.pipeline.crawl.browser import (
    browser_strategy,
    find_browser,
    processes_mentioning,
)
from orchestrator.pipeline.crawl.crawler import CrawlPlan, Page, crawl_pages
from orchestrator.pipeline.crawl.job import run_crawl, validate_crawl
from orchestrator_client.models import CrawlRequest, PageFailure
from tests.orchestrator.pipeline.conftest import MakeContext
from tests.orchestrator.pipeline.crawl.browser_support import (
    FACT_INDEX,
    FACT_SECOND,
    JsSite,
    alive,
    children,
    new_live_children,
    serve_js_site,
)

CHROMIUM = shutil.which("chromium")
pytestmark = [
    pytest.mark.skipif(
        CHROMIUM is None, reason="browser mode needs Chromium: apt-get install chromium"
    ),
    pytest.mark.slow,  # Chromium and Playwright start for each crawl
]


@pytest.fixture(scope="module")
def js_site() -> Iterator[JsSite]:
    with serve_js_site() as site:
        yield site


@pytest.fixture
async def warm_converter(converter: Converter) -> Converter:
    """The converter's child process started before a test counts this process's children."""
    await converter.chunk_markdown("# Warm\n\nStarted before the count.", "warm://up")
    return converter


def _browser_dir(crawl4ai_dir: Path) -> Path:
    return crawl4ai_dir / "browser"


def _plan(url: str, tmp_path: Path, **kw: Any) -> CrawlPlan:
    args: dict[str, Any] = {
        "start_url": url,
        "max_pages": 5,
        "max_depth": 1,
        "allow_private": True,
        "page_timeout": 10.0,
        "base_dir": tmp_path / "c4a",
    }
    args.update(kw)
    return CrawlPlan(**args)


async def _collect(plan: CrawlPlan) -> tuple[list[Page], list[PageFailure]]:
    pages: list[Page] = []
    failures: list[PageFailure] = []
    async for item in crawl_pages(plan):
        if isinstance(item, Page):
            pages.append(item)
        else:
            failures.append(item)
    return pages, failures


async def test_http_mode_misses_what_javascript_writes(js_site: JsSite, tmp_path: Path) -> None:
    pages, failures = await _collect(_plan(js_site.url, tmp_path))
    assert failures == []
    assert [p.url for p in pages] == [js_site.url]
    assert "Notes from the garden" in pages[0].markdown
    assert "moonflowers" not in pages[0].markdown
    assert "/second.html" not in js_site.requested  # the JS-built link was never seen


async def test_browser_job_renders_follows_and_stores(
    js_site: JsSite, make_context: MakeContext, warm_converter: Converter
) -> None:
    """The launched-executable path: run_crawl starts Chromium, crawls, stores, stops it."""
    ctx, _ = make_context(crawl_allow_private=True, crawl_browser_path=Path(str(CHROMIUM)))
    before = children()
    request = CrawlRequest(url=js_site.url, max_pages=5, max_depth=1, mode="browser")
    await validate_crawl(request, ctx.config)
    result = await run_crawl(request, ctx)

    assert result.converter == "crawl4ai:browser"
    assert result.pages == 2
    assert result.failed_pages == []
    hit = (await ctx.service.find("How many silver ferns are watered?", limit=1)).results[0]
    assert FACT_SECOND in hit.text
    assert hit.metadata["source"] == js_site.second_url
    assert hit.metadata["title"] == "Ferns"
    index = (await ctx.service.find("moonflowers by the eastern wall", limit=1)).results[0]
    assert FACT_INDEX in index.text

    # Chromium, its helpers and the Playwright driver are gone, and so is the profile.
    assert processes_mentioning(str(ctx.config.crawl4ai_dir)) == []
    assert new_live_children(before) == []
    assert list(_browser_dir(ctx.config.crawl4ai_dir).iterdir()) == []


async def test_browser_stops_after_a_failed_job(
    js_site: JsSite,
    make_context: MakeContext,
    tmp_path: Path,
    warm_converter: Converter,
    dead_port: int,
) -> None:
    assert find_browser(None) == Path(str(CHROMIUM))
    ctx, recorder = make_context(crawl_allow_private=True)  # Chromium found on PATH
    before = children()

    recorder.cancel = True  # stops the job at its first page, with the browser running
    with pytest.raises(JobCancelled):
        await run_crawl(CrawlRequest(url=js_site.url, mode="browser"), ctx)
    assert processes_mentioning(str(ctx.config.crawl4ai_dir)) == []
    assert new_live_children(before) == []

    recorder.cancel = False
    with pytest.raises(FetchFailed, match="No page of") as down:
        await run_crawl(CrawlRequest(url=f"http://127.0.0.1:{dead_port}/", mode="browser"), ctx)
    assert "ERR_CONNECTION_REFUSED" in str(down.value)
    assert processes_mentioning(str(ctx.config.crawl4ai_dir)) == []
    assert new_live_children(before) == []
    assert list(_browser_dir(ctx.config.crawl4ai_dir).iterdir()) == []

    # No browser behind the configured DevTools endpoint.
    nowhere = f"http://127.0.0.1:{dead_port}"
    ctx, _ = make_context(crawl_allow_private=True, crawl_browser_cdp_url=nowhere)
    with pytest.raises(
        FetchFailed, match=r"No Chromium answers at .*SHIELD_CRAWL_BROWSER_CDP_URL"
    ) as unreachable:
        await run_crawl(CrawlRequest(url=js_site.url, mode="browser"), ctx)
    assert unreachable.value.transient
    assert new_live_children(before) == []

    # An executable that is not a browser: the job says so, and nothing is left running.
    fake = tmp_path / "not-chromium"
    fake.write_text("#!/bin/sh\necho 'no display here' >&2\nexit 3\n")
    fake.chmod(0o755)
    ctx, _ = make_context(crawl_allow_private=True, crawl_browser_path=fake)
    with pytest.raises(FetchFailed, match="exited with code 3 \\(no display here\\)"):
        await run_crawl(CrawlRequest(url=js_site.url, mode="browser"), ctx)
    assert new_live_children(before) == []


async def test_private_start_refused_in_browser_mode(
    js_site: JsSite, make_context: MakeContext, warm_converter: Converter
) -> None:
    ctx, _ = make_context(crawl_browser_path=Path(str(CHROMIUM)))  # private not allowed
    before_requests = len(js_site.requested)
    before = children()
    request = CrawlRequest(url=js_site.url, mode="browser")
    with pytest.raises(InvalidInput, match=r"loopback.*SHIELD_CRAWL_ALLOW_PRIVATE"):
        await validate_crawl(request, ctx.config)
    with pytest.raises(InvalidInput, match=r"loopback.*SHIELD_CRAWL_ALLOW_PRIVATE"):
        await run_crawl(request, ctx)
    assert js_site.requested[before_requests:] == []
    assert new_live_children(before) == []  # no browser was started for it


# -- a Chromium we run ourselves, reached through SHIELD_CRAWL_BROWSER_CDP_URL ---------------


@dataclass
class RunningChromium:
    cdp_url: str
    pid: int


@pytest.fixture(scope="module")
def running_chromium() -> Iterator[RunningChromium]:
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory(prefix="h6-cdp-") as profile:
        args = [
            CHROMIUM,
            "--headless=new",
            # Chromium picks a free port itself and writes it in its profile's
            # DevToolsActivePort: no port to be taken by another process meanwhile.
            "--remote-debugging-port=0",
            "--remote-debugging-address=127.0.0.1",
            f"--user-data-dir={profile}/profile",
            "--no-first-run",
            "--disable-gpu",
        ]
        if os.geteuid() == 0:
            args.append("--no-sandbox")  # Chromium refuses to start as root with its sandbox
        env = {**os.environ, "XDG_CONFIG_HOME": f"{profile}/config"}
        proc = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        try:
            active_port = Path(profile) / "profile" / "DevToolsActivePort"
            for _ in range(200):
                # Its first line is the port, once Chromium has written the file.
                with contextlib.suppress(OSError, ValueError, IndexError, httpx.HTTPError):
                    url = f"http://127.0.0.1:{int(active_port.read_text().splitlines()[0])}"
                    if httpx.get(f"{url}/json/version", timeout=1).status_code == 200:
                        break
                assert proc.poll() is None, "Chromium exited at start"
                time.sleep(0.1)
            else:
                raise TimeoutError("Chromium's DevTools endpoint did not come up within 20 s")
            yield RunningChromium(cdp_url=url, pid=proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


async def test_cdp_url_crawl_leaves_the_browser_running_and_nothing_else(
    js_site: JsSite,
    running_chromium: RunningChromium,
    make_context: MakeContext,
    warm_converter: Converter,
) -> None:
    ctx, _ = make_context(crawl_allow_private=True, crawl_browser_cdp_url=running_chromium.cdp_url)
    before = children(skip=running_chromium.pid)
    result = await run_crawl(CrawlRequest(url=js_site.url, max_depth=1, mode="browser"), ctx)
    assert result.converter == "crawl4ai:browser"
    assert result.pages == 2
    found = await ctx.service.find("silver ferns after midnight", limit=1)
    assert FACT_SECOND in found.results[0].text

    assert alive(running_chromium.pid)  # not ours to stop
    # The Playwright driver was stopped (the running browser's own helpers are not counted).
    assert new_live_children(before, besides=running_chromium.pid) == []
    # Our pages ran in a context of their own, closed after the crawl.
    targets = httpx.get(f"{running_chromium.cdp_url}/json/list").json()
    assert not [t for t in targets if t.get("url", "").startswith(js_site.url)]


# -- the Playwright route: what a page asks the browser to fetch ------------------------------


@pytest.fixture
async def probe_server() -> AsyncIterator[JsSite]:
    """A server on 127.0.0.1 that a public page must not be able to reach."""
    with serve_js_site() as site:
        yield site


def _page_reaching(target: str) -> str:
    return (
        "raw:<html><head><title>Probe</title></head><body><h1>Probe</h1>"
        f"<p>A page that reaches into the private network.</p><img src='{target}pixel.png'>"
        f"<iframe src='{target}frame.html'></iframe>"
        f"<script>fetch('{target}api/secrets').catch(function () {{}});</script>"
        "</body></html>"
    )


async def _render(cdp_url: str, html_url: str, *, allow_private: bool) -> dict[str, str]:
    from crawl4ai import AsyncWebCrawler, CacheMode, CrawlerRunConfig

    strategy = browser_strategy(cdp_url, allow_private=allow_private)
    crawler = AsyncWebCrawler(crawler_strategy=strategy, config=strategy.browser_config)
    async with crawler:
        result = await crawler.arun(
            html_url,
            config=CrawlerRunConfig(
                cache_mode=CacheMode.BYPASS,
                wait_until="load",
                process_in_browser=True,  # Crawl4AI parses raw HTML without a browser otherwise
                verbose=False,
            ),
        )
    assert result.success, result.error_message
    refused: dict[str, str] = strategy.failures
    return refused


async def test_route_refuses_private_requests_a_page_makes(
    probe_server: JsSite, running_chromium: RunningChromium
) -> None:
    """Without DNS no public host can be served here, so the page is given as raw HTML (no
    fetch of its own) and every request it makes - image, frame, fetch() - goes through the
    same route a crawled page's requests go through."""
    cdp_url = running_chromium.cdp_url
    refused = await _render(cdp_url, _page_reaching(probe_server.url), allow_private=False)
    assert probe_server.requested == []
    # The image and the frame hold up the load event, so their refusals are certain to be
    # recorded; the fetch() may still be in flight when the page is read, but it never
    # reached the server either.
    for path in ("pixel.png", "frame.html"):
        assert refused[probe_server.url + path].startswith("refused: 127.0.0.1 (loopback")

    # The same page with private addresses allowed does reach the server: the route, not
    # the page, made the difference.
    refused = await _render(cdp_url, _page_reaching(probe_server.url), allow_private=True)
    assert refused == {}
    assert {"/pixel.png", "/frame.html"} <= set(probe_server.requested)
