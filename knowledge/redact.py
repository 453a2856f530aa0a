"""Keep credentials out of messages: URLs in errors lose their user-info and query string."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def safe_url(url: str) -> str:
    """``http://user:key@host:1/p?api_key=k`` → ``http://host:1/p``; unparsable → ``<url>``."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<url>"
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return urlunsplit((parts.scheme, host + port, parts.path, "", ""))


def safe_location(url: str) -> str:
    """A database or queue URL fit for a message: a SQLite file's path as it is (it holds
    no credentials), anything else through ``safe_url``."""
    if url.lower().startswith("sqlite"):
        return url.split(":///", 1)[-1]
    return safe_url(url)
