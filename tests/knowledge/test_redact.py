from __future__ import annotations

import pytest

from knowledge.redact import safe_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://user:hunter2@host:6333/path?api_key=k", "http://host:6333/path"),
        ("https://qdrant.example.com", "https://qdrant.example.com"),
        ("http://[::1]:11434", "http://[::1]:11434"),
        ("http://host:99999999", "<url>"),
    ],
)
def test_urls_in_messages_lose_credentials(url: str, shown: str) -> None:
    assert safe_url(url) == shown
