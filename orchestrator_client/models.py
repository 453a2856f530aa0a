"""The orchestrator's wire models, defined once: the FastAPI app and the client both use them.

Pure pydantic, no HTTP: the job service and the pipeline take these requests as they are.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import idna
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from knowledge.validation import DEFAULT_METADATA_LIMITS, find_lone_surrogate
from knowledge.vectorstore.base import COLLECTION_NAME

MAX_URL_CHARS = 2048
MAX_SOURCE_CHARS = 4096
MAX_FILENAME_CHARS = 255
MAX_DOMAINS = 50
MAX_DOMAIN_CHARS = 253
# What the schema states of the bounds the validators below (and the pipeline) enforce, so a
# client can know them. A JSON Schema "pattern" is a search: NOT_BLANK = a non-blank string.
HTTP_URL_PATTERN = r"^\s*[Hh][Tt][Tt][Pp][Ss]?://[^/?#]"
NOT_BLANK = r"\S"
CollectionName = Annotated[
    str, Field(json_schema_extra={"pattern": COLLECTION_NAME.pattern, "maxLength": 63})
]
NotBlank = Annotated[str, Field(json_schema_extra={"pattern": NOT_BLANK})]
_LIMITS = DEFAULT_METADATA_LIMITS
METADATA_SCHEMA: dict[str, Any] = {
    "maxProperties": _LIMITS.max_keys,
    "propertyNames": {"minLength": 1, "maxLength": _LIMITS.max_key_chars},
}
METADATA_HELP = (
    f"Added to every chunk's metadata. Plain JSON of at most {_LIMITS.max_bytes} bytes, "
    f"{_LIMITS.max_keys} keys (all levels together), nested {_LIMITS.max_depth} levels deep, "
    f"keys of 1-{_LIMITS.max_key_chars} characters, integers of 64 bits."
)


def is_job_id(value: object) -> bool:
    """Job ids are canonical UUIDs (what a submit returns)."""
    try:
        return isinstance(value, str) and str(uuid.UUID(value)) == value
    except ValueError:
        return False


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled})


class JobKind(StrEnum):
    crawl = "crawl"
    document = "document"
    lightrag_rebuild = "lightrag_rebuild"


class DocType(StrEnum):
    pdf = "pdf"
    docx = "docx"
    pptx = "pptx"
    xlsx = "xlsx"
    html = "html"
    md = "md"
    csv = "csv"
    txt = "txt"


def _ascii_host(name: str) -> str:
    """A host name as DNS and the crawler compare it: lowercase, IDNA (xn--) form."""
    host = name.strip().lower().rstrip(".")
    if not host or any(c in host for c in "/:@ ") or len(host) > 253:
        raise ValueError(f"allowed_domains entries are host names (got {name!r})")
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError:
        raise ValueError(f"{name!r} is not a valid host name") from None


def check_http_url(value: str, field: str = "url") -> str:
    """Syntax only (scheme, host, length); where it points is the pipeline's network check."""
    value = value.strip()
    if len(value) > MAX_URL_CHARS:
        raise ValueError(f"{field} is longer than {MAX_URL_CHARS} characters")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{field} must be an http:// or https:// URL with a host (got {value!r})")
    return value


def refuse_lone_surrogates(data: Any) -> Any:
    """A request's raw data, unless a string in it is not valid Unicode (ValueError).

    A JSON "\\ud800" escape decodes to a string that no encoder, database or engine
    downstream can take: refuse it here, naming the field.
    """
    where = find_lone_surrogate(data)
    if where is not None:
        raise ValueError(
            f"{where or 'the request'} is not valid Unicode: it contains a lone "
            "surrogate code point (such as \\ud800); send proper UTF-8 text"
        )
    return data


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        return refuse_lone_surrogates(data)

    collection: CollectionName | None = Field(
        None, description="Collection to fill; omit for the server's default."
    )
    metadata: dict[str, Any] = Field(
        default_factory=dict, description=METADATA_HELP, json_schema_extra=METADATA_SCHEMA
    )


class CrawlRequest(_Request):
    kind: Literal["crawl"] = "crawl"
    url: str = Field(
        min_length=1,
        max_length=MAX_URL_CHARS,
        description="Start page (http or https).",
        json_schema_extra={"pattern": HTTP_URL_PATTERN},
    )
    max_pages: int = Field(
        10, ge=1, description="Pages to fetch at most; the server caps it (SHIELD_CRAWL_MAX_PAGES)."
    )
    max_depth: int = Field(2, ge=0, le=10, description="Link hops from the start page.")
    allowed_domains: list[Annotated[str, Field(max_length=MAX_DOMAIN_CHARS)]] | None = Field(
        None,
        max_length=MAX_DOMAINS,
        description="Hosts the crawl may visit; default: the start URL's host only.",
    )
    mode: Literal["http", "browser"] | None = Field(
        None,
        description="'http' (fast, no JavaScript) or 'browser' (renders JavaScript); "
        "default: the server's SHIELD_CRAWL_MODE.",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_http_url(value)

    @field_validator("allowed_domains")
    @classmethod
    def _domains(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        out = [_ascii_host(domain) for domain in value]
        return out or None

    @model_validator(mode="after")
    def _start_is_allowed(self) -> CrawlRequest:
        if self.allowed_domains is None:
            return self
        start = _ascii_host(urlsplit(self.url).hostname or "")
        for domain in self.allowed_domains:
            # A domain also admits its subdomains: a bare top-level name would admit all of
            # it (".com"), which no one means.
            if "." not in domain and domain != start:
                raise ValueError(
                    f"allowed_domains entry {domain!r} is a top-level name; give a site's "
                    "host, e.g. 'docs.example.com' or 'example.com'"
                )
        if not any(start == d or start.endswith("." + d) for d in self.allowed_domains):
            raise ValueError(
                f"the start URL's host {start!r} is not in allowed_domains "
                f"{self.allowed_domains}; add it, or nothing past the first page can be crawled"
            )
        return self


class DocumentRequest(_Request):
    kind: Literal["document"] = "document"
    source: NotBlank | None = Field(
        None,
        max_length=MAX_SOURCE_CHARS,
        description="A file path inside the server's SHIELD_INGEST_ROOTS, or an http(s) URL.",
    )
    content_base64: str | None = Field(
        None, description="The file's bytes, base64-encoded; give filename with it."
    )
    filename: NotBlank | None = Field(
        None,
        max_length=MAX_FILENAME_CHARS,
        description="Name of the uploaded file (its extension counts).",
    )
    doc_type: DocType | None = Field(
        None, description="Expected type; checked against the content. Default: detected."
    )

    @model_validator(mode="after")
    def _one_source(self) -> DocumentRequest:
        if (self.source is None) == (self.content_base64 is None):
            raise ValueError("give exactly one of 'source' (path or URL) or 'content_base64'")
        if self.content_base64 is not None and not (self.filename and self.filename.strip()):
            raise ValueError("'filename' is required with 'content_base64'")
        if self.source is not None and not self.source.strip():
            raise ValueError("'source' is empty")
        return self


IngestRequest = Annotated[CrawlRequest | DocumentRequest, Field(discriminator="kind")]


class RebuildRequest(_Request):
    """Index a collection's stored sources in LightRAG again (``POST /lightrag/rebuild``)."""

    kind: Literal["lightrag_rebuild"] = "lightrag_rebuild"
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description="Must be empty: a rebuild re-indexes what is stored, as it was stored.",
        json_schema_extra={"maxProperties": 0},
    )


# Every request a job can carry: what POST /jobs takes, and the rebuild.
AnyJobRequest = Annotated[
    CrawlRequest | DocumentRequest | RebuildRequest, Field(discriminator="kind")
]
JobRequest = CrawlRequest | DocumentRequest | RebuildRequest


class Progress(BaseModel):
    stage: str = Field("queued", description="queued, fetching, converting, embedding, ...")
    done: int = 0
    total: int | None = None


class PageFailure(BaseModel):
    url: str
    reason: str = Field(description="e.g. 'HTTP 404', 'timeout after 20 s', 'refused: private'")


class LightRAGFailure(BaseModel):
    source: str
    reason: str


class LightRAGReport(BaseModel):
    """What a job did to the collection's LightRAG workspace."""

    status: Literal["indexed", "unchanged", "partial", "failed"] = Field(
        description="failed: nothing reached LightRAG (the Qdrant side is unaffected)."
    )
    graph: bool = Field(description="Entities and relations extracted (an LLM is configured).")
    documents_indexed: int = 0
    documents_unchanged: int = 0
    entities: int = Field(0, description="Entities extracted from the indexed documents.")
    relations: int = Field(0, description="Relations extracted from the indexed documents.")
    failures: list[LightRAGFailure] = Field(default_factory=list)


class JobResult(BaseModel):
    collection: str
    pages: int = Field(0, description="Pages fetched and ingested (crawl).")
    documents: int = Field(0, description="Documents converted and ingested.")
    chunks_stored: int = 0
    chunks_skipped_unchanged: int = Field(
        0, description="Chunks already stored with this text: not embedded again."
    )
    chunks_metadata_updated: int = Field(
        0, description="Of those, chunks whose metadata changed and was rewritten in place."
    )
    chunks_removed_stale: int = Field(
        0, description="Chunks of an earlier version of the same source, now removed."
    )
    converter: str | None = Field(None, description="e.g. 'docling:native-pdf', 'docling:docx'.")
    failed_pages: list[PageFailure] = Field(default_factory=list)
    lightrag: LightRAGReport | None = Field(
        None, description="The LightRAG side of the job; absent when LightRAG is off."
    )


class JobError(BaseModel):
    code: str = Field(description="Stable, machine-readable: invalid_input, fetch_failed, ...")
    message: str = Field(description="What went wrong and what to do about it.")


class Job(BaseModel):
    job_id: str
    kind: JobKind
    status: JobStatus
    request: dict[str, Any] = Field(
        description="The request as accepted (uploaded content replaced by its size)."
    )
    progress: Progress = Field(default_factory=Progress)
    result: JobResult | None = None
    error: JobError | None = None
    attempts: int = 0
    cancel_requested: bool = False
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None


class JobAccepted(BaseModel):
    job_id: str
    status: JobStatus = JobStatus.queued
    track_url: str = Field(description="GET it for the job's state (add ?wait=N to long-poll).")
    events_url: str = Field(description="GET it for a server-sent event stream of the job.")
    reused: bool = Field(
        default=False,
        description="True when no new job was made: the same Idempotency-Key was used before, "
        "or (sent without a key) an identical request is still queued or running. "
        "This is that job.",
    )


class JobPage(BaseModel):
    jobs: list[Job]
    limit: int
    offset: int
    next_offset: int | None = None


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer of the orchestrator."""

    error: JobError
