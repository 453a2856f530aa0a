"""The naive baseline: the same libraries as the pipeline, one step after another, no overlap.

Crawl: crawl4ai's browser-free ``AsyncHTTPCrawlerStrategy``, one ``arun`` per page,
breadth-first over the page's internal links (same host, ``max_depth``, ``max_pages``).
Each page's markdown is converted by docling and cut into 256-token chunks by the
pipeline's own converter/chunker code (``orchestrator.pipeline.convert.child.DoclingWorker``),
embedded with ``knowledge.embeddings.local.LocalEmbedder`` (batch 16, the server's
default) and upserted into an ``EdgeVectorStore``; only then is the next page fetched.
Documents: read, convert, chunk, embed, upsert, one file at a time.

Set-up (imports, docling's converters, the model, the crawler) and one warm-up of every
step are done before the clock starts, as the server is warmed up before it is timed.
Runs in a process of its own so its imports and memory leave with it:

    python -m benchmarks.ingestion.naive --site URL --max-pages N --max-depth D \
        --docs DIR --data DIR --out result.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urlsplit

COLLECTION = "naive"
MAX_TOKENS = 256  # the pipeline's default SHIELD_CHUNK_MAX_TOKENS
EMBED_BATCH = 16  # the server's default SHIELD_EMBED_BATCH_SIZE


class Stages:
    """Seconds spent per step, to show where a sequential run's time goes."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start


class Naive:
    def __init__(self, data_dir: Path) -> None:
        from knowledge.embeddings.local import LocalEmbedder
        from knowledge.vectorstore.edge import EdgeVectorStore
        from orchestrator.pipeline.convert.child import DoclingWorker

        # The pipeline's own docling converters and chunkers (what its converter process
        # runs), called in this process one file at a time: the same conversion and the
        # same chunks as the server's, without the pipeline's process, queue and overlap.
        self.worker = DoclingWorker(MAX_TOKENS)
        self.embedder = LocalEmbedder(batch_size=EMBED_BATCH)
        self.store = EdgeVectorStore(data_dir)
        self.stages = Stages()
        self.chunk_texts: list[str] = []
        self.vector_name = ""

    async def open(self) -> None:
        from knowledge.embeddings.local import DIMENSION
        from knowledge.vectorstore.base import CollectionSpec

        spec = CollectionSpec(self.embedder.vector_name, DIMENSION)
        self.vector_name = await self.store.ensure_collection(COLLECTION, spec)

    def convert(self, data: bytes, name: str) -> tuple[list[str], list[list[str]]]:
        with self.stages.timed("convert+chunk"):
            chunks, _title, _converter = self.worker.convert(data, name, name.rpartition(".")[2])
        return [c.text for c in chunks], [c.headings for c in chunks]

    def convert_markdown(self, text: str, name: str) -> tuple[list[str], list[list[str]]]:
        with self.stages.timed("convert+chunk"):
            chunks, _title, _converter = self.worker.markdown(text, name)
        return [c.text for c in chunks], [c.headings for c in chunks]

    async def store_chunks(self, source: str, texts: list[str], headings: list[list[str]]) -> None:
        from knowledge.vectorstore.base import StoredPoint
        from knowledge.vectorstore.ids import content_hash, point_id

        if not texts:
            return
        with self.stages.timed("embed"):
            vectors = await self.embedder.embed_documents(texts)
        points = []
        for i, (text, vector, heads) in enumerate(zip(texts, vectors, headings, strict=True)):
            digest = content_hash(text)
            payload: dict[str, Any] = {
                "document": text,
                "metadata": {"source": source, "headings": heads, "chunk": i, "hash": digest},
            }
            points.append(StoredPoint(point_id(COLLECTION, source, digest), vector, payload))
        with self.stages.timed("upsert"):
            await self.store.upsert(COLLECTION, self.vector_name, points)
        self.chunk_texts += texts

    async def ingest_markdown(self, url: str, markdown: str) -> int:
        texts, headings = self.convert_markdown(markdown, "page.md")
        await self.store_chunks(url, texts, headings)
        return len(texts)

    async def ingest_file(self, path: Path) -> int:
        with self.stages.timed("read"):
            data = path.read_bytes()  # noqa: ASYNC240 - sequential on purpose: the baseline
        texts, headings = self.convert(data, path.name)
        await self.store_chunks(str(path), texts, headings)
        return len(texts)

    async def close(self) -> None:
        await self.embedder.aclose()
        await self.store.close()


def _crawler() -> Any:
    from crawl4ai import AsyncWebCrawler, HTTPCrawlerConfig
    from crawl4ai.async_crawler_strategy import AsyncHTTPCrawlerStrategy

    strategy = AsyncHTTPCrawlerStrategy(browser_config=HTTPCrawlerConfig())
    return AsyncWebCrawler(crawler_strategy=strategy, verbose=False)


async def crawl(
    naive: Naive, crawler: Any, start: str, max_pages: int, max_depth: int
) -> dict[str, Any]:
    """Breadth-first, one page at a time; each page stored before the next is fetched."""
    from crawl4ai import CacheMode, CrawlerRunConfig

    config = CrawlerRunConfig(cache_mode=CacheMode.BYPASS, verbose=False)
    host = urlsplit(start).netloc
    queue: deque[tuple[str, int]] = deque([(start, 0)])
    seen = {start}
    pages = chunks = failed = 0
    began, cpu = time.perf_counter(), time.process_time()
    while queue and pages + failed < max_pages:
        url, depth = queue.popleft()
        with naive.stages.timed("fetch"):
            result = await crawler.arun(url, config=config)
        if not result.success or (result.status_code or 0) >= 400:
            failed += 1
            continue
        pages += 1
        chunks += await naive.ingest_markdown(url, result.markdown.raw_markdown)
        if depth >= max_depth:
            continue
        for link in (result.links or {}).get("internal", []):
            href = urldefrag(str(link.get("href", "")))[0]
            if href and urlsplit(href).netloc == host and href not in seen:
                seen.add(href)
                queue.append((href, depth + 1))
    seconds = time.perf_counter() - began
    return {
        "pages": pages,
        "failed_pages": failed,
        "chunks": chunks,
        "seconds": seconds,
        "cpu_s": time.process_time() - cpu,
    }


async def ingest_docs(naive: Naive, paths: list[Path]) -> dict[str, Any]:
    began, cpu = time.perf_counter(), time.process_time()
    chunks = 0
    for path in paths:
        chunks += await naive.ingest_file(path)
    seconds = time.perf_counter() - began
    return {
        "documents": len(paths),
        "chunks": chunks,
        "seconds": seconds,
        "cpu_s": time.process_time() - cpu,
    }


async def warm_up(naive: Naive, crawler: Any, site: str | None, warm_docs: list[Path]) -> None:
    """Every step once, untimed: first calls load parsers, pipelines and the model."""
    from crawl4ai import CacheMode, CrawlerRunConfig

    if site:
        await crawler.arun(site, config=CrawlerRunConfig(cache_mode=CacheMode.BYPASS))
    for path in warm_docs:
        texts, _ = naive.convert(path.read_bytes(), path.name)
        await naive.embedder.embed_documents(texts or ["warm up"])


async def run(args: argparse.Namespace) -> dict[str, Any]:
    os.environ.setdefault("CRAWL4AI_NO_CLOUD_NOTICE", "1")
    os.environ.setdefault("CRAWL4_AI_BASE_DIRECTORY", str(args.data / "crawl4ai"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    setup_start = time.perf_counter()
    naive = Naive(args.data / "store")
    await naive.open()
    out: dict[str, Any] = {}
    crawler = _crawler()
    await crawler.start()
    try:
        warm = sorted(args.warm.iterdir()) if args.warm else []
        await warm_up(naive, crawler, args.site, warm)
        out["setup_s"] = time.perf_counter() - setup_start
        naive.stages.seconds.clear()
        if args.site:
            out["site"] = await crawl(naive, crawler, args.site, args.max_pages, args.max_depth)
            out["site"]["stages_s"] = dict(naive.stages.seconds)
            out["site"]["chunk_texts"] = list(naive.chunk_texts)
        naive.stages.seconds.clear()
        naive.chunk_texts.clear()
        if args.docs:
            paths = sorted(p for p in args.docs.iterdir() if p.is_file())
            out["docs"] = await ingest_docs(naive, paths)
            out["docs"]["stages_s"] = dict(naive.stages.seconds)
            out["docs"]["chunk_texts"] = list(naive.chunk_texts)
    finally:
        await crawler.close()
        await naive.close()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ingestion.naive")
    p.add_argument("--site", help="start URL of the site to crawl")
    p.add_argument("--max-pages", type=int, default=200)
    p.add_argument("--max-depth", type=int, default=5)
    p.add_argument("--docs", type=Path, help="folder of documents to ingest")
    p.add_argument("--warm", type=Path, help="folder of small documents for the warm-up")
    p.add_argument("--data", type=Path, required=True, help="scratch directory (store, cache)")
    p.add_argument("--out", type=Path, required=True, help="JSON results")
    args = p.parse_args(argv)
    args.data.mkdir(parents=True, exist_ok=True)
    result = asyncio.run(run(args))
    args.out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
