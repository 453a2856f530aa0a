"""A real local website for the ingestion benchmark and the crawl tests, on 127.0.0.1.

Served on free ports; ``tests/sites.py`` re-exports it for the tests (tests may import
benchmarks, not the other way round).

``serve_site(pages=40)`` serves an index and ``pages`` linked pages as a tree (the index
links to pages 1-4, page n to pages 4n+1 .. 4n+4), so 40 pages sit three levels deep.
Every page has a <title> and one distinctive sentence (``site.fact(n)``). The index also
links to a page that 404s, one that 403s, a slow page, a redirect to page 1, and an
off-site server on another loopback address (127.0.0.2) that must never be crawled: its
requests are recorded in ``site.offsite_paths``.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FANOUT = 4
OFFSITE_HOST = "127.0.0.2"  # Linux routes all of 127/8 to lo: a second, distinct host

_CREATURES = ["heron", "otter", "badger", "lynx", "falcon", "walrus", "gecko", "ibis"]
_PLACES = ["Tern Island", "Mount Orrin", "the Saltmarsh", "Kells Harbour", "the Glass Dunes"]
_ACTS = ["counts", "paints", "feeds", "names", "photographs"]
_FILLER = (
    "This archive page belongs to a small regional almanac. It records observations made "
    "by volunteers across seasons, notes on weather and tides, and remarks on the upkeep "
    "of paths and shelters. Readers are asked to report corrections to the editors."
)


def page_depth(n: int) -> int:
    """Link hops from the index to page n (the index is page 0)."""
    depth = 0
    while n > 0:
        n = (n - 1) // FANOUT
        depth += 1
    return depth


def fact(n: int) -> str:
    creature = _CREATURES[n % len(_CREATURES)]
    place = _PLACES[(n // len(_CREATURES)) % len(_PLACES)]
    act = _ACTS[n % len(_ACTS)]
    return (
        f"The page-{n:02d} fact is: the warden of {place} {act} exactly {n * 7 + 3} "
        f"{creature}s at dawn."
    )


@dataclass
class Site:
    url: str  # the index, ending in "/"
    port: int
    pages: int
    offsite_url: str
    requested_paths: list[str] = field(default_factory=list)
    offsite_paths: list[str] = field(default_factory=list)
    host_headers: list[str] = field(default_factory=list)

    def page_url(self, n: int) -> str:
        return self.url if n == 0 else f"{self.url}page-{n:02d}.html"

    def fact(self, n: int) -> str:
        return fact(n)

    def depth(self, n: int) -> int:
        return page_depth(n)

    def pages_within(self, depth: int) -> list[int]:
        """Pages (0 = index) at most ``depth`` hops from the index."""
        return [n for n in range(self.pages + 1) if page_depth(n) <= depth]

    def fetched_pages(self) -> set[int]:
        out = set()
        for path in self.requested_paths:
            if path == "/":
                out.add(0)
            elif path.startswith("/page-") and path.endswith(".html"):
                out.add(int(path[len("/page-") : -len(".html")]))
        return out


def _page(site: Site, n: int, paragraphs: int) -> str:
    title = "Almanac index" if n == 0 else f"Almanac page {n:02d}"
    children = [c for c in range(FANOUT * n + 1, FANOUT * n + FANOUT + 1) if c <= site.pages]
    links = [f'<li><a href="page-{c:02d}.html">Page {c:02d}</a></li>' for c in children]
    if n == 0:
        links += [
            '<li><a href="missing.html">A page that is gone</a></li>',
            '<li><a href="forbidden.html">Members only</a></li>',
            '<li><a href="slow.html">The slow page</a></li>',
            '<li><a href="redirect.html">Moved page</a></li>',
            f'<li><a href="{site.offsite_url}">Our partner site</a></li>',
        ]
    else:
        links.append('<li><a href="/#top">Back to the index</a></li>')
    body = "".join(
        f"<p>{html.escape(_FILLER)} Section {n}.{i} of the almanac.</p>" for i in range(paragraphs)
    )
    sentence = "Welcome to the almanac." if n == 0 else fact(n)
    return (
        f"<!doctype html><html><head><title>{title}</title></head><body>"
        f"<h1>{title}</h1><p>{html.escape(sentence)}</p>{body}"
        f"<ul>{''.join(links)}</ul></body></html>"
    )


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a crawler that timed out has hung up; the late write fails. Expected.


HOLD_LIMIT = 120.0  # a held site answers after this long anyway (guards against a hang only)


def _handler(
    site: Site,
    *,
    delay: float,
    slow_delay: float,
    paragraphs: int,
    hold: threading.Event | None,
) -> type:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            site.requested_paths.append(self.path)
            site.host_headers.append(self.headers.get("host", ""))
            if hold is not None:
                hold.wait(HOLD_LIMIT)
            if delay:
                time.sleep(delay)
            path = self.path.split("?", 1)[0].split("#", 1)[0]
            if path == "/missing.html":
                return self._send(404, "<html><title>Not found</title>No such page.</html>")
            if path == "/forbidden.html":
                return self._send(403, "<html><title>Forbidden</title>Members only.</html>")
            if path == "/redirect.html":
                self.send_response(302)
                self.send_header("location", site.page_url(1))
                self.send_header("content-length", "0")
                self.end_headers()
                return None
            if path == "/slow.html":
                time.sleep(slow_delay)
                return self._send(200, "<html><title>Slow</title><p>Finally here.</p></html>")
            number = 0 if path in ("/", "/index.html") else _page_number(path)
            if number is None or number > site.pages:
                return self._send(404, "<html><title>Not found</title>No such page.</html>")
            return self._send(200, _page(site, number, paragraphs))

        def _send(self, status: int, text: str) -> None:
            data = text.encode()
            self.send_response(status)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


def _page_number(path: str) -> int | None:
    if path.startswith("/page-") and path.endswith(".html"):
        digits = path[len("/page-") : -len(".html")]
        if digits.isdigit():
            return int(digits)
    return None


class _OffsiteHandler(BaseHTTPRequestHandler):
    paths: list[str]

    def do_GET(self) -> None:
        self.paths.append(self.path)
        data = b"<html><title>Partner</title><p>Off-site content.</p></html>"
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def _serving(server: ThreadingHTTPServer) -> Iterator[None]:
    # A short poll interval: the default 0.5 s makes every shutdown cost half a second.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextmanager
def serve_site(
    pages: int = 40,
    *,
    delay: float = 0.0,
    slow_delay: float = 5.0,
    paragraphs: int = 3,
    hold: threading.Event | None = None,
) -> Iterator[Site]:
    """Serve the site; ``delay`` slows every answer (latency), ``slow_delay`` the slow page.

    With ``hold``, no request is answered before the event is set: a crawl of the site
    stays in progress until the test lets it go on.
    """
    offsite_paths: list[str] = []
    offsite_handler = type("Offsite", (_OffsiteHandler,), {"paths": offsite_paths})
    offsite = _QuietServer((OFFSITE_HOST, 0), offsite_handler)
    offsite_url = f"http://{OFFSITE_HOST}:{offsite.server_address[1]}/partner.html"
    site = Site("", 0, pages, offsite_url, offsite_paths=offsite_paths)
    handler = _handler(site, delay=delay, slow_delay=slow_delay, paragraphs=paragraphs, hold=hold)
    server = _QuietServer(("127.0.0.1", 0), handler)
    site.port = int(server.server_address[1])
    site.url = f"http://127.0.0.1:{site.port}/"
    with _serving(offsite), _serving(server):
        yield site
