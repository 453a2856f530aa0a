"""A JavaScript-built local site and process checks for the browser-mode crawl tests."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

FACT_INDEX = "The night garden keeps exactly 41 moonflowers beside the eastern wall."
FACT_SECOND = "The gardener waters the 17 silver ferns only after midnight."


def _script_writing(sentence: str, link: str | None) -> str:
    """JS that writes ``sentence`` (and a link) into the page; neither appears in the HTML."""
    words = ",".join(f"'{w}'" for w in sentence.split(" "))
    code = f"var p = document.createElement('p'); p.textContent = [{words}].join(' ');"
    code += "document.getElementById('app').appendChild(p);"
    if link:
        head, tail = link[:3], link[3:]
        code += (
            "var a = document.createElement('a'); a.textContent = 'More of the garden';"
            f"a.href = '{head}' + '{tail}'; document.getElementById('app').appendChild(a);"
        )
    return f"<script>{code}</script>"


def _page(title: str, sentence: str, link: str | None) -> bytes:
    return (
        f"<!doctype html><html><head><title>{title}</title></head><body>"
        f"<h1>{title}</h1><p>Notes from the garden, written in by the page's script.</p>"
        f"<div id='app'></div>{_script_writing(sentence, link)}"
        "</body></html>"
    ).encode()


@dataclass
class JsSite:
    url: str
    requested: list[str] = field(default_factory=list)

    @property
    def second_url(self) -> str:
        return f"{self.url}second.html"


class _Quiet(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a browser that navigated away has hung up; the late write fails


@contextlib.contextmanager
def serve_js_site() -> Iterator[JsSite]:
    site = JsSite(url="")  # its URL once the server has bound a port
    pages = {
        "/": _page("Night garden", FACT_INDEX, "/second.html"),
        "/second.html": _page("Ferns", FACT_SECOND, None),
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            site.requested.append(self.path)
            body = pages.get(self.path, b"<html><title>Not found</title></html>")
            self.send_response(200 if self.path in pages else 404)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = _Quiet(("127.0.0.1", 0), Handler)
    site.url = f"http://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()


def children(skip: int | None = None) -> set[int]:
    """Pids of this test process's descendants (the Playwright driver would be one), but
    not of the process ``skip``."""
    found: set[int] = set()
    frontier = [os.getpid()]
    while frontier:
        pid = frontier.pop()
        if pid == skip:
            continue
        try:
            tasks = Path(f"/proc/{pid}/task").iterdir()
            kids = [
                int(k) for t in tasks for k in (t / "children").read_text().split() if k.strip()
            ]
        except OSError:
            continue
        for kid in kids:
            if kid not in found:
                found.add(kid)
                frontier.append(kid)
    return found


def alive(pid: int) -> bool:
    """Running, not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def new_live_children(before: set[int], *, besides: int | None = None) -> list[str]:
    """Command lines of descendants started since ``before`` and still running (other than
    those of the process ``besides``)."""
    found = []
    for pid in children(skip=besides) - before:
        if alive(pid):
            with contextlib.suppress(OSError):
                found.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" "))
    return [cmd.decode(errors="replace")[:200] for cmd in found]
