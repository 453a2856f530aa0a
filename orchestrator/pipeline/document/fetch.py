"""Download one URL (a document for ingest_doc) within the network rules and a size limit.

Redirects are followed by hand so that every hop is checked, and each request is sent to
the address that was checked (the host name only travels in the Host header and the TLS
server name). That closes the DNS-rebinding window between "check" and "connect": a name
that answers a public address to the check and a private one a moment later is never
dialled on the second answer.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from knowledge.errors import InvalidInput
from orchestrator.errors import FetchFailed
from orchestrator.pipeline.netsafety import resolve_checked

MAX_REDIRECTS = 5
USER_AGENT = "shield-mcp (+https://github.com/shield-mcp)"


@dataclass(frozen=True)
class Fetched:
    url: str  # final URL after redirects
    content: bytes
    content_type: str | None


def _pinned_request(client: httpx.AsyncClient, url: str, address: str) -> httpx.Request:
    target = httpx.URL(url)
    host_header = target.netloc.decode("ascii")
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return client.build_request(
        "GET",
        target.copy_with(host=str(ip)),
        headers={"Host": host_header, "User-Agent": USER_AGENT},
        # The certificate is checked against the real host name, not the address.
        extensions={"sni_hostname": target.host} if target.scheme == "https" else None,
    )


def _tls_error(exc: BaseException) -> ssl.SSLError | None:
    """The TLS error behind a transport error (httpx wraps httpcore's, which wraps ssl's)."""
    seen: BaseException | None = exc
    for _depth in range(8):  # a bounded walk: exception chains can loop
        if seen is None or isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _tls_failure(url: str, host: str, error: ssl.SSLError) -> FetchFailed:
    """A certificate that does not verify stays that way: no retry, say what to fix."""
    if isinstance(error, ssl.SSLCertVerificationError):
        why = error.verify_message or error.reason or str(error)
        return FetchFailed(
            f"Could not fetch {url}: the TLS certificate of {host} could not be verified "
            f"({why}). The site must present a certificate valid for its name from a "
            "trusted authority: fix it there, or download the document yourself and send "
            "it as content_base64 with a filename."
        )
    return FetchFailed(
        f"Could not fetch {url}: the TLS handshake with {host} failed ({error.reason or error}); "
        "the server's TLS setup is not one this client accepts."
    )


def _status_error(status: int, url: str) -> FetchFailed:
    transient = status >= 500 or status == 429
    hint = "the server may recover; try again later" if transient else "check the URL"
    return FetchFailed(f"HTTP {status} from {url}; {hint}.", transient=transient)


async def _send(client: httpx.AsyncClient, url: str, addresses: list[str]) -> httpx.Response:
    """Send to the first address that accepts a connection."""
    last: httpx.ConnectError | None = None
    for address in addresses:
        request = _pinned_request(client, url, address)
        try:
            return await client.send(request, stream=True)
        except httpx.ConnectError as exc:
            last = exc
    assert last is not None  # resolve() never returns an empty list
    raise last


async def _read_capped(response: httpx.Response, url: str, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise InvalidInput(
            f"{url} is too large: {int(declared)} bytes; the limit is {max_bytes} bytes."
        )
    body = bytearray()
    async for piece in response.aiter_bytes():
        body.extend(piece)
        if len(body) > max_bytes:
            raise InvalidInput(f"{url} is too large: more than the limit of {max_bytes} bytes.")
    return bytes(body)


async def _follow(
    client: httpx.AsyncClient, url: str, *, max_bytes: int, allow_private: bool
) -> Fetched:
    current = url
    for _hop in range(MAX_REDIRECTS + 1):
        try:
            addresses = await resolve_checked(current, allow_private=allow_private)
        except InvalidInput as exc:
            if current == url:
                raise
            raise InvalidInput(f"Redirect from {url} to {current} refused: {exc}") from None
        response = await _send(client, current, addresses)
        try:
            if response.is_redirect:
                location = response.headers.get("location")
                if not location:
                    raise FetchFailed(
                        f"HTTP {response.status_code} from {current} without a Location."
                    )
                current = urljoin(current, location)
                continue
            if response.status_code >= 400:
                raise _status_error(response.status_code, current)
            content = await _read_capped(response, current, max_bytes)
            return Fetched(current, content, response.headers.get("content-type"))
        finally:
            await response.aclose()
    raise FetchFailed(f"{url} redirects more than {MAX_REDIRECTS} times; give the final URL.")


# The caller's API takes a timeout in seconds (a stage budget from settings); it is applied
# with asyncio.timeout inside.
async def fetch_url(
    url: str,
    *,
    max_bytes: int,
    timeout: float,  # noqa: ASYNC109
    allow_private: bool,
) -> Fetched:
    """GET ``url``: InvalidInput when refused or too large, FetchFailed when the fetch fails."""
    host = urlsplit(url).hostname or url
    try:
        # trust_env off: a proxy from the environment would dial the host name itself and
        # undo the address pinning above.
        async with (
            asyncio.timeout(timeout),
            httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False) as client,
        ):
            return await _follow(client, url, max_bytes=max_bytes, allow_private=allow_private)
    except TimeoutError:
        raise FetchFailed(
            f"Fetching {url} timed out after {timeout:g} s; try again later.", transient=True
        ) from None
    except httpx.TimeoutException:
        raise FetchFailed(
            f"Fetching {url} timed out; the server at {host} is slow.", transient=True
        ) from None
    except httpx.TransportError as exc:
        tls = _tls_error(exc)
        # An abrupt end of the connection mid-handshake is the network's doing, not the
        # certificate's: it stays transient like any other dropped connection.
        if tls is not None and not isinstance(tls, ssl.SSLEOFError | ssl.SSLZeroReturnError):
            raise _tls_failure(url, host, tls) from None
        raise FetchFailed(
            f"Could not fetch {url}: {type(exc).__name__} ({exc}); is {host} reachable?",
            transient=True,
        ) from None
