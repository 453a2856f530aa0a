"""Where an outgoing fetch may go: public internet addresses only, unless private is allowed.

Every fetch the pipeline makes (a crawl's start URL, each followed link and redirect, a
document URL) passes through here. A host name is refused when ANY of its addresses is not
public: a name that resolves to both a public and a loopback address could otherwise be
dialled on the loopback one.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from knowledge.errors import DependencyUnavailable, InvalidInput
from orchestrator.errors import FetchFailed

ALLOW_HINT = "set SHIELD_CRAWL_ALLOW_PRIVATE=true to allow"
RESOLVE_TIMEOUT = 10.0  # seconds; a DNS server that never answers must not hang a job
DNS_RETRY_AFTER = 10.0  # seconds; what a caller is told to wait after a temporary DNS failure


class DnsUnavailable(DependencyUnavailable, FetchFailed):
    """DNS failed temporarily (no answer, or EAI_AGAIN): the name may well resolve later.

    A DependencyUnavailable, so a submit answers 503 with Retry-After and a running job is
    retried; also a (transient) FetchFailed, so a crawl that records a link it cannot
    check as skipped, rather than failing the whole crawl, keeps doing so.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, retry_after=DNS_RETRY_AFTER)
        self.transient = True


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean
        "169.254.170.2",  # AWS ECS task metadata
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
    )
)
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, NAT64): it is where packets go."""
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr in _NAT64:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def non_public_reason(ip: str) -> str | None:
    """Why an address is not on the public internet ('loopback', ...), or None if it is."""
    try:
        addr: IPAddress = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return "not an IP address"
    if addr in _METADATA:
        return "cloud metadata"
    if isinstance(addr, ipaddress.IPv6Address):
        inner = _embedded_ipv4(addr)
        if inner is not None:
            reason = non_public_reason(str(inner))
            return f"IPv6 form of a {reason} address" if reason else None
        if addr.is_site_local:
            return "site-local"
    if addr.is_unspecified:
        return "unspecified"
    if addr.is_loopback:
        return "loopback"
    if addr.is_link_local:
        return "link-local"
    if addr.is_multicast:
        return "multicast"
    if isinstance(addr, ipaddress.IPv4Address) and addr in _CGNAT:
        return "carrier-grade NAT"
    if addr.is_private:
        return "private"
    if addr.is_reserved or not addr.is_global:
        return "reserved"
    return None


def is_public_address(ip: str) -> bool:
    return non_public_reason(ip) is None


def _host_of(url: str) -> tuple[str, int]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidInput(f"{url!r} is not a valid URL ({exc}).") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidInput(f"{url!r} refused: only http:// and https:// URLs can be fetched.")
    if not parts.hostname:
        raise InvalidInput(f"{url!r} has no host name; give a full http(s) URL.")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


async def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (the event loop's resolver), in its order."""
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    else:
        return [str(literal)]
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT
        )
    except TimeoutError:
        raise DnsUnavailable(
            f"DNS failed temporarily: looking up {host!r} got no answer within "
            f"{RESOLVE_TIMEOUT:g} s; try again later."
        ) from None
    except socket.gaierror as exc:
        if exc.errno == socket.EAI_AGAIN:
            raise DnsUnavailable(
                f"DNS failed temporarily: looking up {host!r} gave {exc.strerror!r}; "
                f"try again in {DNS_RETRY_AFTER:g} s or so."
            ) from None
        raise InvalidInput(
            f"{host!r} does not resolve to an address ({exc}); check the URL's host name."
        ) from None
    except UnicodeError as exc:
        raise InvalidInput(
            f"{host!r} does not resolve to an address ({exc}); check the URL's host name."
        ) from None
    addresses: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise InvalidInput(f"{host!r} does not resolve to an address; check the URL's host name.")
    return addresses


def refuse_if_private(url: str, host: str, addresses: list[str]) -> None:
    for address in addresses:
        reason = non_public_reason(address)
        if reason is not None:
            shown = host if host == address else f"{host} resolves to {address}"
            raise InvalidInput(f"{url} refused: {shown} ({reason} address); {ALLOW_HINT}.")


async def resolve_checked(url: str, *, allow_private: bool) -> list[str]:
    """The addresses to dial for ``url``, all of them public unless private is allowed."""
    host, port = _host_of(url)
    addresses = await resolve(host, port)
    if not allow_private:
        refuse_if_private(url, host, addresses)
    return addresses


async def check_url(url: str, *, allow_private: bool) -> None:
    """Refuse (InvalidInput) a URL that is not http(s), does not resolve, or is not public."""
    await resolve_checked(url, allow_private=allow_private)


def refused_reason(exc: BaseException) -> str:
    """'refused: <why>' from a refusal message, without the URL it starts with."""
    return "refused: " + str(exc).split(" refused: ", 1)[-1]
