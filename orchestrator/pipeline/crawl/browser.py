"""Browser mode: Crawl4AI's Playwright strategy on a Chromium reached over CDP.

Either a running Chromium (SHIELD_CRAWL_BROWSER_CDP_URL) or one launched here from an
executable (SHIELD_CRAWL_BROWSER_PATH, else ``chromium`` on PATH) for the length of one
crawl; both end as a CDP connection, because Crawl4AI's own launcher wants a Playwright
browser download that cannot be had offline.

Network rules: links are filtered like in HTTP mode and each page's final URL is checked
by the crawl; in addition every request the browser makes for the crawl (documents,
sub-resources, script fetches, pop-ups) is checked in a Playwright route on the crawl's
own browser context. Limits, and why HTTP mode stays the default: Playwright routes only
the first URL of a redirect chain, so intermediate redirect hops inside the browser are
not checked; and the browser resolves names itself after the route's check, so a name
that re-binds to a private address between the two lookups is not caught.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import urllib.request
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

from knowledge.errors import InvalidInput
from orchestrator.errors import FetchFailed
from orchestrator.pipeline.netsafety import refused_reason, resolve_checked

BROWSER_START_TIMEOUT = 20.0  # seconds for Chromium to open its DevTools port
BROWSER_STOP_TIMEOUT = 5.0  # seconds between SIGTERM and SIGKILL
PROFILE_PREFIX = "chromium-"


def find_browser(configured: Path | None) -> Path | None:
    if configured is not None:
        return configured
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def chromium_args(profile: Path) -> list[str]:
    args = [
        "--headless=new",
        # Port 0: Chromium picks a free port and writes it to DevToolsActivePort in the
        # profile, so there is no window between choosing a port and binding it.
        "--remote-debugging-port=0",
        "--remote-debugging-address=127.0.0.1",
        f"--user-data-dir={profile}",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # Chromium exits at start ("Running as root without --no-sandbox is not supported")
        # when run as root, as it is in most containers. The page processes then run
        # without the OS sandbox; run the worker as an unprivileged user to keep it.
        args.append("--no-sandbox")
    return args


def _devtools_port(profile: Path) -> int | None:
    try:
        first = (profile / "DevToolsActivePort").read_text().splitlines()[0]
        return int(first)
    except (OSError, IndexError, ValueError):
        return None  # not written yet, or half-written


def _last_line(log: Path) -> str:
    try:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][-300:] if lines else ""


async def run_to_end(cleanup: Awaitable[None]) -> None:
    """Await ``cleanup`` to its end even if this task is cancelled meanwhile, then re-raise.

    A job that fails or times out cancels its crawl while the crawl may be closing its
    browser; cut short, that close would leave the Playwright driver or Chromium running.
    """
    task = asyncio.ensure_future(cleanup)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise


def processes_mentioning(marker: str) -> list[int]:
    """Pids of live processes whose command line contains ``marker`` (Linux /proc)."""
    proc_dir = Path("/proc")
    if not proc_dir.is_dir():
        return []
    needle = marker.encode()
    found = []
    for entry in proc_dir.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()  # empty for zombies: not counted
        except OSError:
            continue
        if needle in cmdline:
            found.append(int(entry.name))
    return found


async def _stop(proc: asyncio.subprocess.Process, marker: str) -> None:
    """Stop Chromium and every process it started; return once they are all gone."""
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), BROWSER_STOP_TIMEOUT)
        except TimeoutError:
            proc.kill()
            await proc.wait()
    # Chromium was started in a session of its own: its pid is the group id, which the
    # kernel does not hand out again while any member lives, so this reaches only its
    # children. Usually they are gone already (ESRCH).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    # The crash handler leaves the group (it daemonizes) and exits on its own shortly after
    # the browser; every one of these processes names our temporary directory.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BROWSER_STOP_TIMEOUT
    while left := await asyncio.to_thread(processes_mentioning, marker):
        if loop.time() > deadline:
            for pid in left:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            return
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def launched_chromium(executable: Path, workdir: Path) -> AsyncIterator[str]:
    """A headless Chromium with a fresh profile under ``workdir``; yields its CDP URL.

    The browser and its profile are gone when the block exits, however it exits.
    """
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=PROFILE_PREFIX, dir=workdir) as tmp:
        profile = Path(tmp) / "profile"
        log = Path(tmp) / "chromium.log"
        with log.open("wb") as log_file:
            try:
                proc = await asyncio.create_subprocess_exec(
                    str(executable),
                    *chromium_args(profile),
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=log_file,
                    # Chromium's crash handler keeps its database under XDG_CONFIG_HOME, not
                    # in the profile: pointed here, nothing is left in the worker's home.
                    env={**os.environ, "XDG_CONFIG_HOME": str(Path(tmp) / "config")},
                    start_new_session=True,
                )
            except OSError as exc:
                raise InvalidInput(
                    f"Chromium at {executable} cannot be started ({exc}); point "
                    "SHIELD_CRAWL_BROWSER_PATH at a Chromium executable such as /usr/bin/chromium."
                ) from None
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + BROWSER_START_TIMEOUT
            while (port := _devtools_port(profile)) is None:
                if proc.returncode is not None or loop.time() > deadline:
                    why = (
                        f"exited with code {proc.returncode}"
                        if proc.returncode is not None
                        else f"opened no DevTools port within {BROWSER_START_TIMEOUT:g} s"
                    )
                    raise FetchFailed(
                        f"Chromium at {executable} did not start: {why} ({_last_line(log)}); "
                        "check SHIELD_CRAWL_BROWSER_PATH.",
                        transient=False,
                    )
                await asyncio.sleep(0.1)
            yield f"http://127.0.0.1:{port}"
        finally:
            await run_to_end(_stop(proc, tmp))


def _devtools_answers(cdp_url: str) -> bool:
    if cdp_url.startswith(("ws://", "wss://")):
        return True  # a WebSocket endpoint is checked by connecting to it
    if not cdp_url.startswith(("http://", "https://")):
        return False
    probe = cdp_url.rstrip("/") + "/json/version"
    try:
        with urllib.request.urlopen(probe, timeout=2) as reply:  # noqa: S310 - http(s) only
            return bool(reply.status == 200)
    except (OSError, ValueError):
        return False


async def check_devtools(cdp_url: str) -> None:
    """Fail at once, and say where, when nothing answers at the configured endpoint."""
    if not await asyncio.to_thread(_devtools_answers, cdp_url):
        raise FetchFailed(
            f"No Chromium answers at {cdp_url} (SHIELD_CRAWL_BROWSER_CDP_URL); start it with "
            "--remote-debugging-port, or crawl with mode 'http'.",
            transient=True,
        )


class RouteGuard:
    """Aborts, in the browser, every request to a non-public address; remembers why."""

    def __init__(self) -> None:
        self.refused: dict[str, str] = {}  # url -> "refused: ..." for the job result

    async def check(self, route: Any, request: Any) -> None:
        url = str(request.url)
        if url.startswith(("data:", "blob:", "about:")):
            await route.continue_()  # in-memory content, nothing is dialled
            return
        try:
            await resolve_checked(url, allow_private=False)
        except (InvalidInput, FetchFailed) as exc:
            self.refused.setdefault(url, refused_reason(exc))
            await route.abort("blockedbyclient")
            return
        await route.continue_()

    async def install(self, page: Any, context: Any, **_: Any) -> Any:
        # The hook runs for every page; a second route on the same context would only
        # stack handlers (the newest answers), so each context is routed once. The mark
        # lives on the context object itself: an id() could be reused by a later context.
        if getattr(context, "_shield_route_guard", None) is not self:
            await context.route("**/*", self.check)
            context._shield_route_guard = self
        return page


def browser_strategy(cdp_url: str, *, allow_private: bool) -> Any:
    """Crawl4AI's Playwright strategy on ``cdp_url``, with requests checked in a route."""
    from crawl4ai import BrowserConfig
    from crawl4ai.async_crawler_strategy import AsyncPlaywrightCrawlerStrategy

    config = BrowserConfig(
        browser_mode="cdp",
        cdp_url=cdp_url,
        headless=True,
        verbose=False,
        # A context of our own, closed at the end: no cookies or storage shared with other
        # users of a running Chromium, and our route applies to our pages only.
        create_isolated_context=True,
        # Without it Crawl4AI leaves its Playwright driver process running after every
        # crawl on a CDP browser (it does not own the browser, so it returns early).
        cdp_cleanup_on_close=True,
        cdp_close_delay=0,
    )
    strategy = AsyncPlaywrightCrawlerStrategy(browser_config=config)
    # The crawl looks up a failed page's reason here, as it does on the HTTP strategy.
    strategy.failures = {}
    if not allow_private:
        guard = RouteGuard()
        strategy.failures = guard.refused
        strategy.set_hook("on_page_context_created", guard.install)
    return strategy
