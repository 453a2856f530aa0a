"""The values the pipeline works with, taken from settings once by the composition root.

The pipeline never sees the process's settings: a test or another host builds one of these
and the same code runs. Field names follow the SHIELD_ settings they come from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal


@dataclass(frozen=True)
class PipelineConfig:
    # What ingest_doc may read, and how much.
    ingest_roots: tuple[Path, ...] = ()
    max_document_bytes: int = 50 * 1024 * 1024
    max_upload_bytes: int = 20 * 1024 * 1024
    fetch_timeout: float = 60.0
    # Crawling: where it may go and how.
    crawl_allow_private: bool = False
    crawl_mode: Literal["http", "browser"] = "http"
    crawl_browser_cdp_url: str | None = None
    crawl_browser_path: Path | None = None
    crawl_max_pages: int = 500
    crawl_page_timeout: float = 20.0
    # Crawl4AI's files (downloads, a browser's profile) live here.
    crawl4ai_dir: Path = field(default_factory=lambda: Path("crawl4ai"))
    # The embedded store keeps collections in directories: names must be lowercase.
    embedded_store: bool = True
    # Ingestion also feeds LightRAG (SHIELD_LIGHTRAG).
    lightrag: bool = True
