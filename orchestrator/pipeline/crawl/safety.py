"""Network rules inside Crawl4AI: every link it follows and every request its HTTP client sends.

Crawl4AI follows links and redirects itself, so the rules are applied at three points:

* a URL filter in the deep-crawl filter chain refuses links to non-public hosts before they
  are queued (and remembers them, so the job result can list them as refused);
* the HTTP strategy's aiohttp session gets a resolver that refuses non-public answers. The
  connector dials exactly the addresses the resolver returned, so a name is checked and
  pinned in one step (no DNS-rebinding window) - for the first request and every redirect;
* aiohttp skips the resolver for IP literals, so a request trace checks literal hosts of
  the first request and of every redirect target before aiohttp follows it.

Imported only from inside the crawl (it imports crawl4ai and aiohttp).
"""

from __future__ import annotations

import ipaddress
import socket
from types import SimpleNamespace
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
from crawl4ai.async_crawler_strategy import (
    AsyncHTTPCrawlerStrategy,
    ConnectionTimeoutError,
    HTTPStatusError,
)
from crawl4ai.deep_crawling import URLFilter

from knowledge.errors import InvalidInput
from orchestrator.errors import FetchFailed
from orchestrator.pipeline.netsafety import (
    ALLOW_HINT,
    non_public_reason,
    refuse_if_private,
    refused_reason,
    resolve_checked,
)


class NetworkRefused(InvalidInput):
    """A crawl request aimed at a non-public address."""


def _refuse_literal(url: str) -> None:
    """Refuse ``url`` when its host is a non-public IP literal (names go to the resolver)."""
    host = urlsplit(url).hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return
    try:
        refuse_if_private(url, host, [host])
    except InvalidInput as exc:
        raise NetworkRefused(str(exc)) from None


class PublicOnlyResolver(aiohttp.abc.AbstractResolver):
    def __init__(self) -> None:
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[aiohttp.abc.ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        for answer in answers:
            reason = non_public_reason(answer["host"])
            if reason is not None:
                raise NetworkRefused(
                    f"{host} refused: {host} resolves to {answer['host']} ({reason} address); "
                    f"{ALLOW_HINT}."
                )
        return answers

    async def close(self) -> None:
        await self._inner.close()


class SafeHTTPStrategy(AsyncHTTPCrawlerStrategy):  # type: ignore[misc]
    """Crawl4AI's HTTP strategy with the network rules, and per-URL failure reasons kept.

    Crawl4AI folds a failed fetch into a long free-text error; ``failures`` keeps a short
    reason per URL ("HTTP 404", "timeout after 20 s", "refused: ...") for the job result.
    """

    def __init__(self, *, allow_private: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.allow_private = allow_private
        self.failures: dict[str, str] = {}
        self.requested: list[str] = []  # every URL sent, redirect targets included

    async def start(self) -> None:
        if getattr(self, "_session", None) is not None:
            return
        trace = aiohttp.TraceConfig()
        trace.on_request_start.append(self._on_start)
        trace.on_request_redirect.append(self._on_redirect)
        connector = aiohttp.TCPConnector(
            limit=self.max_connections,
            ttl_dns_cache=self.dns_cache_ttl,
            use_dns_cache=True,
            resolver=None if self.allow_private else PublicOnlyResolver(),
        )
        self._session = aiohttp.ClientSession(
            headers=dict(self._BASE_HEADERS),
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.DEFAULT_TIMEOUT),
            trace_configs=[trace],
        )

    async def _on_start(
        self, _s: aiohttp.ClientSession, _ctx: SimpleNamespace, params: Any
    ) -> None:
        url = str(params.url)
        self.requested.append(url)
        if not self.allow_private:
            _refuse_literal(url)

    async def _on_redirect(
        self, _s: aiohttp.ClientSession, _ctx: SimpleNamespace, params: Any
    ) -> None:
        location = params.response.headers.get("location")
        if not location:
            return
        target = urljoin(str(params.response.url), location)
        self.requested.append(target)
        if not self.allow_private:
            _refuse_literal(target)

    async def crawl(self, url: str, config: Any = None, **kwargs: Any) -> Any:
        try:
            return await super().crawl(url, config, **kwargs)
        except Exception as exc:
            timeout = getattr(config, "page_timeout", None)
            self.failures[url] = failure_reason(exc, timeout / 1000 if timeout else None)
            raise


def failure_reason(exc: BaseException, timeout: float | None) -> str:
    """A short reason for a failed page from the exception chain Crawl4AI wraps."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, NetworkRefused):
            return refused_reason(seen)
        if isinstance(seen, HTTPStatusError):
            return f"HTTP {seen.status_code}"
        if isinstance(seen, ConnectionTimeoutError | TimeoutError):
            return f"timeout after {timeout:g} s" if timeout else "timeout"
        if isinstance(seen, aiohttp.TooManyRedirects):
            return "too many redirects"
        if isinstance(seen, aiohttp.ClientConnectorError):
            return f"connection failed: {seen.os_error or seen}"
        seen = seen.__cause__ or seen.__context__
    return f"failed: {exc}"[:300]


class PublicLinkFilter(URLFilter):  # type: ignore[misc]
    """Drops links to non-public hosts before they are queued; remembers why."""

    __slots__ = ("_verdicts", "allow_private", "refused")

    def __init__(self, *, allow_private: bool) -> None:
        super().__init__(name="public-only")
        self.allow_private = allow_private
        self.refused: dict[str, str] = {}
        self._verdicts: dict[str, str | None] = {}  # host -> refusal, one lookup per host

    async def apply(self, url: str) -> bool:
        if self.allow_private:
            self._update_stats(True)
            return True
        host = urlsplit(url).hostname or ""
        if host not in self._verdicts:
            try:
                await resolve_checked(url, allow_private=False)
                self._verdicts[host] = None
            except (InvalidInput, FetchFailed) as exc:
                self._verdicts[host] = refused_reason(exc)
        verdict = self._verdicts[host]
        if verdict is not None:
            self.refused.setdefault(url, verdict)
        self._update_stats(verdict is None)
        return verdict is None
