"""The wire models refuse requests that could not do what the caller means."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from orchestrator_client.models import CrawlRequest, DocumentRequest


def refusal(**fields: object) -> str:
    with pytest.raises(ValidationError) as caught:
        CrawlRequest.model_validate({"url": "https://docs.example.com/start", **fields})
    return str(caught.value)


def test_a_top_level_allowed_domain_is_refused() -> None:
    # DomainFilter admits subdomains: "com" would let the crawl roam all of .com.
    assert "top-level name" in refusal(allowed_domains=["com"])


def test_allowed_domains_must_cover_the_start_page() -> None:
    assert "not in allowed_domains" in refusal(allowed_domains=["other.org"])


def test_allowed_domains_are_normalised_to_what_dns_compares() -> None:
    request = CrawlRequest(url="http://münchen.de/", allowed_domains=["MÜNCHEN.de."])
    assert request.allowed_domains == ["xn--mnchen-3ya.de"]
    parent = CrawlRequest(url="https://docs.example.com/", allowed_domains=["example.com"])
    assert parent.allowed_domains == ["example.com"]


@pytest.mark.parametrize("bad", ["http://x/y", "a b.com", "user@host.com", ""])
def test_allowed_domains_entries_are_host_names(bad: str) -> None:
    assert "host name" in refusal(allowed_domains=[bad])


@pytest.mark.parametrize("url", ["ftp://example.com/", "example.com", "http:///nohost"])
def test_only_http_urls_with_a_host_are_crawled(url: str) -> None:
    with pytest.raises(ValidationError, match="http:// or https://"):
        CrawlRequest(url=url)


def test_a_document_request_names_exactly_one_source() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        DocumentRequest()
    with pytest.raises(ValidationError, match="exactly one"):
        DocumentRequest(source="/a.pdf", content_base64="eA==", filename="a.txt")
    with pytest.raises(ValidationError, match="filename"):
        DocumentRequest(content_base64="eA==")
