"""Crawl a site with Crawl4AI: a stream of pages (markdown) and per-page failures.

Breadth-first from the start URL, within ``allowed_domains`` (subdomains included), no
external links, at most ``max_pages`` pages and ``max_depth`` hops. Results are yielded as
they arrive so the caller can chunk and embed while the crawl goes on. crawl4ai is
imported here lazily: it costs ~1.7 s and must stay off the MCP server's start-up path.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urldefrag, urlsplit, urlunsplit

from knowledge.errors import InvalidInput
from orchestrator.errors import FetchFailed
from orchestrator.pipeline.crawl.browser import run_to_end
from orchestrator.pipeline.netsafety import refused_reason, resolve_checked
from orchestrator_client.models import PageFailure

BROWSER_MISSING = (
    "Browser mode needs Chromium: set SHIELD_CRAWL_BROWSER_CDP_URL to a running Chromium's "
    "DevTools endpoint, or SHIELD_CRAWL_BROWSER_PATH to its executable (e.g. "
    "/usr/bin/chromium, Debian package 'chromium'); or crawl with mode 'http'."
)


@dataclass(frozen=True)
class CrawlPlan:
    start_url: str
    max_pages: int
    max_depth: int
    allow_private: bool
    page_timeout: float  # seconds
    base_dir: Path  # Crawl4AI's own files (downloads, logs)
    allowed_domains: list[str] = field(default_factory=list)  # empty = start host
    mode: Literal["http", "browser"] = "http"
    cdp_url: str | None = None
    browser_path: Path | None = None

    @property
    def domains(self) -> list[str]:
        return self.allowed_domains or [(urlsplit(self.start_url).hostname or "").lower()]


@dataclass(frozen=True)
class Page:
    url: str  # final URL, after redirects
    title: str
    markdown: str
    depth: int


def normalize_url(url: str) -> str:
    """The identity of a page: no fragment, lower-case scheme and host, no default port."""
    parts = urlsplit(urldefrag(url)[0])
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port in (None, default) else f"{host}:{port}"
    return urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", parts.query, ""))


def crawl4ai_environment(base_dir: Path) -> dict[str, str]:
    """Crawl4AI reads these once, when first imported: a process's composition root sets
    them for its data dir (each crawl also passes its own directory explicitly)."""
    return {"CRAWL4_AI_BASE_DIRECTORY": str(base_dir), "CRAWL4AI_NO_CLOUD_NOTICE": "1"}


def _title(result: Any) -> str:
    title = (result.metadata or {}).get("title")
    return str(title).strip() if title else ""


def _markdown(result: Any) -> str:
    md = result.markdown
    if md is None:
        return ""
    return str(getattr(md, "raw_markdown", md) or "")


async def _final_url_refusal(url: str, allow_private: bool) -> str | None:
    if allow_private:
        return None
    try:
        await resolve_checked(url, allow_private=False)
    except (InvalidInput, FetchFailed) as exc:
        return refused_reason(exc)
    return None


@contextlib.asynccontextmanager
async def _strategy(plan: CrawlPlan) -> AsyncIterator[tuple[Any, Any]]:
    """(crawler strategy, browser config) for the plan's mode."""
    if plan.mode == "http":
        from crawl4ai import BrowserConfig, HTTPCrawlerConfig

        from orchestrator.pipeline.crawl.safety import SafeHTTPStrategy

        http = HTTPCrawlerConfig(downloads_path=str(plan.base_dir / "downloads"))
        yield (
            SafeHTTPStrategy(allow_private=plan.allow_private, browser_config=http),
            BrowserConfig(verbose=False),
        )
        return
    from orchestrator.pipeline.crawl.browser import (
        browser_strategy,
        check_devtools,
        find_browser,
        launched_chromium,
    )

    if plan.cdp_url:
        await check_devtools(plan.cdp_url)
        strategy = browser_strategy(plan.cdp_url, allow_private=plan.allow_private)
        yield strategy, strategy.browser_config
        return
    executable = find_browser(plan.browser_path)
    if executable is None:
        raise InvalidInput(BROWSER_MISSING)
    async with launched_chromium(executable, plan.base_dir / "browser") as cdp_url:
        strategy = browser_strategy(cdp_url, allow_private=plan.allow_private)
        yield strategy, strategy.browser_config


async def _start(crawler: Any, plan: CrawlPlan) -> None:
    try:
        await crawler.start()
    except Exception as exc:
        if plan.mode == "http":
            raise
        where = (
            f"the DevTools endpoint {plan.cdp_url} (SHIELD_CRAWL_BROWSER_CDP_URL)"
            if plan.cdp_url
            else "the Chromium started for this crawl"
        )
        raise FetchFailed(
            f"Browser mode could not connect to {where}: {str(exc)[:200]}. Check that the "
            "browser is running, or crawl with mode 'http'.",
            transient=True,
        ) from exc


async def crawl_pages(plan: CrawlPlan) -> AsyncGenerator[Page | PageFailure, None]:
    """Yield each fetched page (deduplicated by URL) and each page that failed or was refused."""
    plan.base_dir.mkdir(parents=True, exist_ok=True)
    from crawl4ai import AsyncWebCrawler, CacheMode, CrawlerRunConfig
    from crawl4ai.deep_crawling import BFSDeepCrawlStrategy, DomainFilter, FilterChain

    from orchestrator.pipeline.crawl.safety import PublicLinkFilter, failure_reason

    link_filter = PublicLinkFilter(allow_private=plan.allow_private)
    deep = BFSDeepCrawlStrategy(
        max_depth=plan.max_depth,
        # Crawl4AI 0.9.5's streaming BFS stops *before* yielding the page that reaches
        # max_pages; one more lets it yield them all, and the loop below stops at ours.
        max_pages=plan.max_pages + 1,
        include_external=False,
        # The domain filter first: it rejects synchronously, before the network check runs.
        filter_chain=FilterChain([DomainFilter(allowed_domains=plan.domains), link_filter]),
    )
    config = CrawlerRunConfig(
        cache_mode=CacheMode.BYPASS,
        deep_crawl_strategy=deep,
        stream=True,
        page_timeout=int(plan.page_timeout * 1000),
        verbose=False,
    )
    pages = 0
    seen: set[str] = set()
    reported: set[str] = set()
    async with _strategy(plan) as (strategy, browser_config):
        crawler = AsyncWebCrawler(
            crawler_strategy=strategy, config=browser_config, base_directory=str(plan.base_dir)
        )
        try:
            await _start(crawler, plan)
            results = await crawler.arun(plan.start_url, config=config)
            try:
                async for result in results:
                    for url, reason in link_filter.refused.items():
                        if url not in reported:
                            reported.add(url)
                            yield PageFailure(url=url, reason=reason)
                    url = str(result.url)
                    # The browser hands back 4xx/5xx pages as content (HTTP mode raises).
                    status = int(getattr(result, "status_code", None) or 0)
                    if not result.success or status >= 400:
                        reason = (
                            getattr(strategy, "failures", {}).get(url)
                            or (f"HTTP {status}" if status >= 400 else None)
                            or failure_reason(
                                RuntimeError(result.error_message or "unknown error"),
                                plan.page_timeout,
                            )
                        )
                        yield PageFailure(url=url, reason=reason)
                        continue
                    final = str(result.redirected_url or url)
                    refusal = await _final_url_refusal(final, plan.allow_private)
                    if refusal is not None:
                        yield PageFailure(url=url, reason=refusal)
                        continue
                    key = normalize_url(final)
                    if key in seen:
                        continue
                    seen.add(key)
                    markdown = _markdown(result)
                    if not markdown.strip():
                        yield PageFailure(url=final, reason="no text content")
                        continue
                    depth = int((result.metadata or {}).get("depth") or 0)
                    yield Page(final, _title(result) or final, markdown, depth)
                    pages += 1
                    if pages >= plan.max_pages:
                        break
            finally:
                await deep.shutdown()
                aclose = getattr(results, "aclose", None)
                if aclose is not None:
                    await aclose()
        finally:
            await run_to_end(crawler.close())
