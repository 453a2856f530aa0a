"""Which source each LightRAG document is: the real URL or path, title and chunk pages.

LightRAG keeps only a document's ``file_path`` (and only its last path segment), so every
document gets a unique, slash-free id (``doc_id_of``) for both, and this table maps it
back: every reference a query returns names the real source. It lives in the job
database (SQLite in the data dir, or the shared PostgreSQL), beside the jobs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from orchestrator.database import GuardedEngine, open_engine

_metadata = sa.MetaData()
sources = sa.Table(
    "shield_lightrag_sources",
    _metadata,
    sa.Column("workspace", sa.String(64), primary_key=True),
    sa.Column("doc_id", sa.String(64), primary_key=True),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("title", sa.Text, nullable=True),
    # Of the chunk texts and title: an unchanged source is not indexed again.
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("pages", sa.JSON, nullable=False),  # page of each chunk, by chunk order
    # True once the LLM extracted entities and relations from it.
    sa.Column("graph", sa.Boolean, nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
)


def doc_id_of(workspace: str, source: str) -> str:
    """A source's LightRAG document id and file_path: unique, stable, no slash."""
    digest = hashlib.sha256(f"{workspace}\x00{source}".encode()).hexdigest()[:32]
    return f"src-{digest}"


@dataclass(frozen=True)
class SourceEntry:
    workspace: str
    doc_id: str
    source: str
    title: str | None
    content_hash: str
    pages: list[int | None]
    graph: bool

    def page_of(self, chunk_index: int) -> int | None:
        return self.pages[chunk_index] if 0 <= chunk_index < len(self.pages) else None


def _entry(row: Any) -> SourceEntry:
    m = row._mapping
    return SourceEntry(
        workspace=m["workspace"],
        doc_id=m["doc_id"],
        source=m["source"],
        title=m["title"],
        content_hash=m["content_hash"],
        pages=list(m["pages"] or []),
        graph=bool(m["graph"]),
    )


class SourceRegistry:
    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: AsyncEngine | None = None

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("the LightRAG source registry is not open")
        return self._engine

    async def open(self) -> None:
        if self._engine is None:
            # A database that is down answers 503 with Retry-After, as the job store does.
            self._engine = GuardedEngine(
                await open_engine(self.url, _metadata), self.url, "LightRAG source registry"
            )

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def get(self, workspace: str, doc_ids: Sequence[str]) -> dict[str, SourceEntry]:
        if not doc_ids:
            return {}
        query = sa.select(sources).where(
            sources.c.workspace == workspace, sources.c.doc_id.in_(list(set(doc_ids)))
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {entry.doc_id: entry for entry in map(_entry, rows)}

    async def all(self, workspace: str) -> list[SourceEntry]:
        query = sa.select(sources).where(sources.c.workspace == workspace)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_entry(row) for row in rows]

    async def put(self, entry: SourceEntry) -> None:
        values = {
            "workspace": entry.workspace,
            "doc_id": entry.doc_id,
            "source": entry.source,
            "title": entry.title,
            "content_hash": entry.content_hash,
            "pages": entry.pages,
            "graph": entry.graph,
            "updated_at": datetime.now(UTC).isoformat(),
        }
        key = (sources.c.workspace == entry.workspace) & (sources.c.doc_id == entry.doc_id)
        async with self.engine.begin() as conn:
            done = await conn.execute(sa.update(sources).where(key).values(**values))
            if not done.rowcount:
                await conn.execute(sa.insert(sources).values(**values))

    async def remove(self, workspace: str, doc_id: str) -> None:
        key = (sources.c.workspace == workspace) & (sources.c.doc_id == doc_id)
        async with self.engine.begin() as conn:
            await conn.execute(sa.delete(sources).where(key))
