"""The offline tokenizer: cl100k_base without a download, and cheap to copy.

Regression: built from its BPE ranks, the encoding was not in tiktoken's registry, so each
deep copy of LightRAG's configuration (one per query and per insert) rebuilt a 100k-entry
table: 209 ms of a 222 ms naive query.
"""

from __future__ import annotations

import copy
import pickle

from orchestrator.graphrag.loader import load_lightrag
from orchestrator.graphrag.tokenizer import offline_tokenizer


def test_it_counts_like_cl100k_base() -> None:
    load_lightrag()
    tokenizer = offline_tokenizer()
    tokens = tokenizer.encode("The billing database feeds the ledger.")
    assert tokenizer.decode(tokens) == "The billing database feeds the ledger."
    assert len(tokens) == 7


def test_a_copy_carries_the_encoding_by_name_not_its_table() -> None:
    load_lightrag()
    encoding = offline_tokenizer().tokenizer
    # What deepcopy and pickle carry: a name, resolved from the registry on the other side.
    assert len(pickle.dumps(encoding)) < 200
    copied = copy.deepcopy(offline_tokenizer())
    assert copied.encode("ledger") == offline_tokenizer().encode("ledger")
