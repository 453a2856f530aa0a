"""The crawl's page stream against the real local site (tests/sites.py), and its net rules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.pipeline.crawl.crawler import CrawlPlan, Page, crawl_pages, normalize_url
from orchestrator.pipeline.crawl.safety import PublicLinkFilter, SafeHTTPStrategy
from orchestrator_client.models import PageFailure
from tests.sites import Site, serve_site


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    with serve_site(pages=40, slow_delay=3.0) as s:
        yield s


def plan(site: Site, tmp_path: Path, **kw: object) -> CrawlPlan:
    args: dict[str, object] = {
        "start_url": site.url,
        "max_pages": 100,
        "max_depth": 2,
        "allow_private": True,
        "page_timeout": 1.0,
        "base_dir": tmp_path / "c4a",
    }
    args.update(kw)
    return CrawlPlan(**args)  # type: ignore[arg-type]


async def collect(p: CrawlPlan) -> tuple[list[Page], list[PageFailure]]:
    pages: list[Page] = []
    failures: list[PageFailure] = []
    async for item in crawl_pages(p):
        (pages if isinstance(item, Page) else failures).append(item)  # type: ignore[arg-type]
    return pages, failures


async def test_depth_limit_failures_and_no_offsite(site: Site, tmp_path: Path) -> None:
    before = len(site.requested_paths)
    pages, failures = await collect(plan(site, tmp_path, max_depth=2))
    expected = {site.page_url(n) for n in site.pages_within(2)}  # index + pages 1..20
    assert {p.url for p in pages} == expected
    assert len(pages) == len(expected)  # the redirect to page 1 did not add a duplicate
    requested = site.requested_paths[before:]
    assert "/page-21.html" not in requested  # depth 3 never fetched
    assert all(n <= 20 for n in site.fetched_pages())
    assert site.offsite_paths == []  # the partner link on another host was not followed
    reasons = {f.url: f.reason for f in failures}
    assert reasons == {
        f"{site.url}missing.html": "HTTP 404",
        f"{site.url}forbidden.html": "HTTP 403",
        f"{site.url}slow.html": "timeout after 1 s",
    }
    deep = next(p for p in pages if p.url == site.page_url(17))
    assert site.fact(17) in deep.markdown
    assert deep.title == "Almanac page 17"
    assert deep.depth == 2


async def test_max_pages_is_exact(site: Site, tmp_path: Path) -> None:
    pages, _ = await collect(plan(site, tmp_path, max_pages=5, max_depth=3))
    assert len(pages) == 5
    assert pages[0].url == site.url


async def test_depth_zero_is_the_start_page_only(site: Site, tmp_path: Path) -> None:
    pages, failures = await collect(plan(site, tmp_path, max_depth=0))
    assert [p.url for p in pages] == [site.url]
    assert failures == []


async def test_allowed_domains_excluding_the_links_host(site: Site, tmp_path: Path) -> None:
    # The start page is always fetched; its links to 127.0.0.1 are outside the allowed hosts.
    pages, _ = await collect(plan(site, tmp_path, allowed_domains=["example.org"]))
    assert [p.url for p in pages] == [site.url]


async def test_loopback_start_refused_without_private(site: Site, tmp_path: Path) -> None:
    before = len(site.requested_paths)
    pages, failures = await collect(plan(site, tmp_path, allow_private=False))
    assert pages == []
    assert [f.url for f in failures] == [site.url]
    assert failures[0].reason.startswith("refused: 127.0.0.1 (loopback address)")
    assert site.requested_paths[before:] == []


async def test_resolver_refuses_a_name_for_loopback(site: Site) -> None:
    # aiohttp dials what the resolver returns: refusing there covers redirects too.
    url = f"http://localhost:{site.port}/"
    before = len(site.requested_paths)
    strategy = SafeHTTPStrategy(allow_private=False)
    try:
        with pytest.raises(Exception):  # noqa: B017 - Crawl4AI wraps it; the reason is kept
            await strategy.crawl(url)
    finally:
        await strategy.close()
    assert strategy.failures[url].startswith(
        "refused: localhost resolves to 127.0.0.1 (loopback address)"
    )
    assert site.requested_paths[before:] == []


async def test_redirect_hops_are_seen_by_the_checks(site: Site) -> None:
    strategy = SafeHTTPStrategy(allow_private=True)
    try:
        response = await strategy.crawl(f"{site.url}redirect.html")
    finally:
        await strategy.close()
    assert response.redirected_url == site.page_url(1)
    assert strategy.requested == [f"{site.url}redirect.html", site.page_url(1)]


async def test_link_filter() -> None:
    strict = PublicLinkFilter(allow_private=False)
    assert not await strict.apply("http://127.0.0.1:8000/a")
    assert not await strict.apply("http://10.0.0.7/b")
    assert await strict.apply("http://8.8.8.8/c")
    assert strict.refused["http://10.0.0.7/b"].startswith("refused: 10.0.0.7 (private address)")
    assert await PublicLinkFilter(allow_private=True).apply("http://127.0.0.1:8000/a")


def test_normalize_url() -> None:
    assert normalize_url("HTTP://Example.ORG:80/a#frag") == "http://example.org/a"
    assert normalize_url("https://example.org:8443/?q=1") == "https://example.org:8443/?q=1"
    assert normalize_url("http://example.org") == "http://example.org/"
