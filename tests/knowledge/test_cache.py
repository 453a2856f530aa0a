from __future__ import annotations

from prometheus_client import REGISTRY

from knowledge.embeddings.cache import CachedEmbedder
from knowledge.embeddings.local import LocalEmbedder


def lookups(result: str) -> float:
    return REGISTRY.get_sample_value("embedding_query_cache_total", {"result": result}) or 0.0


async def test_repeated_queries_hit_the_cache(local_embedder: LocalEmbedder) -> None:
    cache = CachedEmbedder(local_embedder, max_entries=8)
    hits_before, misses_before = lookups("hit"), lookups("miss")
    first = await cache.embed_query("where is the handbook?")
    again = await cache.embed_query("where is the handbook?")
    other = await cache.embed_query("who wrote the handbook?")
    assert first == again
    assert other != first
    assert (cache.hits, cache.misses) == (1, 2)
    assert lookups("hit") - hits_before == 1
    assert lookups("miss") - misses_before == 2


async def test_the_cache_is_bounded_and_evicts_least_recently_used(
    local_embedder: LocalEmbedder,
) -> None:
    cache = CachedEmbedder(local_embedder, max_entries=2)
    await cache.embed_query("a")
    await cache.embed_query("b")
    await cache.embed_query("a")  # a is now the most recent
    await cache.embed_query("c")  # evicts b
    assert len(cache) == 2
    misses = cache.misses
    await cache.embed_query("a")
    assert cache.misses == misses  # still cached
    await cache.embed_query("b")
    assert cache.misses == misses + 1  # was evicted


async def test_documents_are_not_cached(local_embedder: LocalEmbedder) -> None:
    cache = CachedEmbedder(local_embedder, max_entries=8)
    await cache.embed_documents(["stored passage"])
    assert len(cache) == 0


async def test_zero_size_disables_caching(local_embedder: LocalEmbedder) -> None:
    cache = CachedEmbedder(local_embedder, max_entries=0)
    await cache.embed_query("q")
    await cache.embed_query("q")
    assert (cache.hits, cache.misses, len(cache)) == (0, 2, 0)
