"""Network rules: which addresses a fetch may reach, for IP literals and resolved names."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from knowledge.errors import DependencyUnavailable, InvalidInput
from orchestrator.errors import is_transient
from orchestrator.pipeline.netsafety import check_url, is_public_address, non_public_reason

NON_PUBLIC = {
    "127.0.0.1": "loopback",
    "127.8.9.10": "loopback",
    "10.1.2.3": "private",
    "172.16.0.1": "private",
    "192.168.1.1": "private",
    "169.254.10.1": "link-local",
    "169.254.169.254": "cloud metadata",
    "100.100.100.200": "cloud metadata",
    "100.64.0.1": "carrier-grade NAT",
    "0.0.0.0": "unspecified",
    "224.0.0.1": "multicast",
    "240.0.0.1": "private",  # Python files 240/4 (reserved) under is_private
    "::1": "loopback",
    "::": "unspecified",
    "fe80::1": "link-local",
    "fc00::1": "private",
    "fd00:ec2::254": "cloud metadata",
    "fec0::1": "site-local",
    "ff02::1": "multicast",
    "::ffff:127.0.0.1": "IPv6 form of a loopback address",
    "::ffff:169.254.169.254": "IPv6 form of a cloud metadata address",
    "2002:7f00:1::": "IPv6 form of a loopback address",  # 6to4 wrapping 127.0.0.1
    "64:ff9b::a00:1": "IPv6 form of a private address",  # NAT64 wrapping 10.0.0.1
}


@pytest.mark.parametrize(("ip", "reason"), NON_PUBLIC.items())
def test_non_public_addresses_are_named(ip: str, reason: str) -> None:
    assert non_public_reason(ip) == reason
    assert not is_public_address(ip)


@pytest.mark.parametrize("ip", ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111"])
def test_public_addresses_pass(ip: str) -> None:
    assert is_public_address(ip)


@pytest.mark.parametrize("ip", list(NON_PUBLIC))
async def test_urls_on_non_public_literals_are_refused(ip: str) -> None:
    host = f"[{ip}]" if ":" in ip else ip
    url = f"http://{host}:8080/page"
    with pytest.raises(InvalidInput, match="SHIELD_CRAWL_ALLOW_PRIVATE") as err:
        await check_url(url, allow_private=False)
    assert NON_PUBLIC[ip] in str(err.value)
    await check_url(url, allow_private=True)


async def test_a_name_that_resolves_to_loopback_is_refused() -> None:
    with pytest.raises(InvalidInput, match=r"localhost resolves to 127\.0\.0\.1 \(loopback"):
        await check_url("http://localhost:9/", allow_private=False)
    await check_url("http://localhost:9/", allow_private=True)


async def test_public_literal_passes_without_private() -> None:
    await check_url("https://8.8.8.8/dns-query", allow_private=False)


@pytest.mark.parametrize(
    "url", ["ftp://8.8.8.8/file", "file:///etc/passwd", "gopher://8.8.8.8/", "http:///nohost"]
)
async def test_only_http_urls_with_a_host(url: str) -> None:
    with pytest.raises(InvalidInput):
        await check_url(url, allow_private=True)


@pytest.mark.parametrize("allow_private", [False, True])
async def test_unresolvable_host_says_so(allow_private: bool) -> None:
    with pytest.raises(InvalidInput, match="does not resolve"):
        await check_url("http://no-such-host.invalid/", allow_private=allow_private)


async def test_a_temporary_dns_failure_is_worth_retrying(monkeypatch: pytest.MonkeyPatch) -> None:
    # The system resolver answers EAI_AGAIN only when its DNS server fails (SERVFAIL, no
    # network), and pointing it at a failing server means editing /etc/resolv.conf, which
    # this machine shares. So only the resolver call at the socket boundary is replaced,
    # for this one host; everything above it (asyncio's getaddrinfo, our checks) is real.
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "flaky.example":
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with pytest.raises(DependencyUnavailable, match="DNS failed temporarily") as err:
        await check_url("https://flaky.example/report.pdf", allow_private=False)
    assert "flaky.example" in str(err.value)
    assert is_transient(err.value)  # the worker retries the job
    assert err.value.retry_after  # the API answers 503 with Retry-After
    # A name that does not exist stays a permanent refusal, through the same patched call.
    with pytest.raises(InvalidInput, match="does not resolve"):
        await check_url("http://no-such-host.invalid/", allow_private=False)
