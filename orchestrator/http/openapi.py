"""The bounds of this server's configuration, stated in its OpenAPI schema.

The wire models state the bounds every server enforces; these depend on the settings
(SHIELD_CRAWL_MAX_PAGES, SHIELD_MAX_UPLOAD_BYTES, the embedded store's lowercase collection
names, the metadata keys the pipeline sets), so the schema a server serves is patched with
its own values: a client reading /openapi.json knows what this server will refuse.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

# The ingestion requests: what the pipeline's checks (dispatch.py) apply to.
JOB_REQUESTS = ("CrawlRequest", "DocumentRequest", "RebuildRequest")
LOWERCASE_COLLECTION = r"^[a-z0-9][a-z0-9_-]{0,62}$"


@dataclass(frozen=True)
class ServerBounds:
    crawl_max_pages: int | None = None
    max_upload_bytes: int | None = None
    max_body_bytes: int | None = None
    lowercase_collections: bool = False
    reserved_metadata_keys: frozenset[str] = frozenset()


def _properties(schema: dict[str, Any], model: str) -> dict[str, Any]:
    found: dict[str, Any] = schema["components"]["schemas"][model]["properties"]
    return found


def _string_of(prop: dict[str, Any]) -> dict[str, Any]:
    """The string branch of an optional field (``anyOf: [string, null]``), or the field."""
    for branch in prop.get("anyOf", []):
        if branch.get("type") == "string":
            found: dict[str, Any] = branch
            return found
    return prop


def apply_bounds(schema: dict[str, Any], bounds: ServerBounds) -> None:
    if bounds.crawl_max_pages is not None:
        pages = _properties(schema, "CrawlRequest")["max_pages"]
        pages["maximum"] = bounds.crawl_max_pages
    if bounds.max_upload_bytes is not None:
        content = _properties(schema, "DocumentRequest")["content_base64"]
        content["description"] = (
            f"The file's bytes, base64-encoded (at most {bounds.max_upload_bytes} bytes "
            "decoded: SHIELD_MAX_UPLOAD_BYTES); give filename with it."
        )
        if bounds.max_body_bytes is not None:
            _string_of(content)["maxLength"] = bounds.max_body_bytes
    for model in JOB_REQUESTS:
        props = _properties(schema, model)
        if bounds.lowercase_collections:
            _string_of(props["collection"])["pattern"] = LOWERCASE_COLLECTION
            props["collection"]["description"] = (
                "Collection to fill; omit for the server's default. Lowercase: the embedded "
                "store keeps collections in directories."
            )
        if bounds.reserved_metadata_keys and model != "RebuildRequest":
            names = props["metadata"].setdefault("propertyNames", {})
            names["not"] = {"enum": sorted(bounds.reserved_metadata_keys)}


def state_bounds(app: FastAPI, bounds: ServerBounds) -> None:
    """``app.openapi()`` then answers the schema with ``bounds`` in it (built once)."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            apply_bounds(build(), bounds)  # build() caches it in app.openapi_schema
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
