"""Browser mode: Crawl4AI's Playwright strategy on a Chromium reached over CDP.

Either a running Chromium (SHIELD_CRAWL_BROWSER_CDP_URL) or one launched here from an
executable (SHIELD_CRAWL_BROWSER_PATH, else ``chromium`` on PATH) with a DevTools port;
both end as a CDP connection, because Crawl4AI's own launcher wants a Playwright browser
download that cannot be had offline.

Network rules: links are filtered like in HTTP mode and each page's final URL is checked
by the crawl; in addition every request the page makes (document and sub-resources) is
checked in a Playwright route. Playwright routes only the first URL of a redirect chain,
so intermediate redirect hops inside the browser are not checked - one reason HTTP mode
is the default.

Untested on the build machine (no Chromium installed there).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
import tempfile
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from knowledge.errors import InvalidInput
from orchestrator.errors import FetchFailed
from orchestrator.pipeline.netsafety import resolve_checked

BROWSER_START_TIMEOUT = 20.0


def find_browser(configured: Path | None) -> Path | None:
    if configured is not None:
        return configured
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def free_local_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _devtools_ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/version", timeout=1) as r:
            return bool(json.load(r).get("webSocketDebuggerUrl"))
    except OSError:
        return False


@contextlib.asynccontextmanager
async def launched_chromium(executable: Path, port: int) -> AsyncIterator[str]:
    """Start a headless Chromium with a DevTools port; yields its CDP URL."""
    with tempfile.TemporaryDirectory(prefix="shield-chromium-") as profile:
        proc = await asyncio.create_subprocess_exec(
            str(executable),
            "--headless=new",
            f"--remote-debugging-port={port}",
            "--remote-debugging-address=127.0.0.1",
            f"--user-data-dir={profile}",
            "--no-first-run",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + BROWSER_START_TIMEOUT
            while not await asyncio.to_thread(_devtools_ready, port):
                if proc.returncode is not None or loop.time() > deadline:
                    raise FetchFailed(
                        f"Chromium at {executable} did not start (exit code {proc.returncode}); "
                        "check SHIELD_CRAWL_BROWSER_PATH.",
                        transient=False,
                    )
                await asyncio.sleep(0.2)
            yield f"http://127.0.0.1:{port}"
        finally:
            if proc.returncode is None:
                proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 10)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()


def browser_strategy(cdp_url: str, *, allow_private: bool) -> Any:
    """Crawl4AI's Playwright strategy on ``cdp_url``, with requests checked in a route."""
    from crawl4ai import BrowserConfig
    from crawl4ai.async_crawler_strategy import AsyncPlaywrightCrawlerStrategy

    config = BrowserConfig(browser_mode="cdp", cdp_url=cdp_url, headless=True, verbose=False)
    strategy = AsyncPlaywrightCrawlerStrategy(browser_config=config)
    if not allow_private:

        async def guard(route: Any, request: Any) -> None:
            try:
                await resolve_checked(request.url, allow_private=False)
            except (InvalidInput, FetchFailed):
                await route.abort("blockedbyclient")
                return
            await route.continue_()

        async def install_guard(page: Any, context: Any, **_: Any) -> Any:
            await context.route("**/*", guard)
            return page

        strategy.set_hook("on_page_context_created", install_guard)
    return strategy
