"""Chunks: what the pipeline embeds and stores, and how docling documents are cut into them.

``Chunk`` is plain data (it crosses the process boundary from the docling child). The
chunker itself is docling's ``HybridChunker`` over the embedding model's own tokenizer
(``knowledge/embeddings/assets/minilm_tokenizer.json``), so "fits the model" is measured in
the tokens the model will actually see, offline. docling is imported inside the functions:
only the converter's child process calls them.

Decision: ``Chunk.text`` is the *contextualized* text (the section headings, outermost
first, one per line, then the passage), and that is what gets embedded and stored. A search
for a section's topic then finds passages whose own words never name it. HybridChunker
sizes chunks by this contextualized text, so it stays within the token budget too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from docling_core.transforms.chunker.hybrid_chunker import HybridChunker

# The embedder truncates at the model's limit *including* its [CLS] and [SEP] tokens; the
# chunker counts tokens without them, so it gets the limit minus these two.
SPECIAL_TOKENS = 2


@dataclass(frozen=True)
class Chunk:
    text: str
    headings: list[str] = field(default_factory=list)  # section path, outermost first
    page: int | None = None  # 1-based, for paged formats


def tokenizer_path() -> Path:
    return Path(str(resources.files("knowledge.embeddings") / "assets" / "minilm_tokenizer.json"))


def content_budget(max_tokens: int) -> int:
    """Tokens a chunk's text may have so the embedder sees all of it."""
    return max(8, max_tokens - SPECIAL_TOKENS)


def make_tokenizer(max_tokens: int) -> Any:
    """A docling ``BaseTokenizer`` over the model's tokenizer file (no hub, no transformers)."""
    from docling_core.transforms.chunker.tokenizer.base import BaseTokenizer
    from pydantic import ConfigDict, PrivateAttr
    from tokenizers import Tokenizer

    class ModelTokenizer(BaseTokenizer):
        model_config = ConfigDict(arbitrary_types_allowed=True)
        file: str
        limit: int
        _tokenizer: Any = PrivateAttr(None)

        def model_post_init(self, context: Any) -> None:
            tokenizer = Tokenizer.from_file(self.file)
            # Counting must see every token: the embedder's truncation is what we avoid.
            tokenizer.no_truncation()
            tokenizer.no_padding()
            self._tokenizer = tokenizer

        def count_tokens(self, text: str) -> int:
            return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

        def get_max_tokens(self) -> int:
            return self.limit

        def get_tokenizer(self) -> Any:
            # semchunk (docling's plain-text splitter) accepts a token-counting callable.
            return self.count_tokens

    return ModelTokenizer(file=str(tokenizer_path()), limit=content_budget(max_tokens))


def make_chunker(tokenizer: Any, *, merge: bool = True) -> HybridChunker:
    """HybridChunker over ``make_tokenizer``'s tokenizer; ``merge`` joins small peers."""
    from docling_core.transforms.chunker.hybrid_chunker import HybridChunker

    return HybridChunker(tokenizer=tokenizer, merge_peers=merge)


def _first_page(doc_chunk: Any) -> int | None:
    pages = [
        prov.page_no
        for item in doc_chunk.meta.doc_items
        for prov in (getattr(item, "prov", None) or [])
        if getattr(prov, "page_no", None)
    ]
    return min(pages) if pages else None


def _headings(doc_chunk: Any) -> list[str]:
    return [h for h in (getattr(doc_chunk.meta, "headings", None) or []) if h.strip()]


def _with_context(headings: list[str], body: str) -> str:
    # The same shape as HybridChunker.contextualize: the heading path, then the passage.
    return "\n".join([*headings, body])


def chunk_document(chunker: HybridChunker, document: Any) -> list[Chunk]:
    """Chunks of a ``DoclingDocument`` whose pages mean nothing to a reader.

    Spreadsheets and slides carry a "page" per sheet or slide in docling; only PDFs have
    pages a reader would look up (see ``chunk_paged_document``).
    """
    out: list[Chunk] = []
    for doc_chunk in chunker.chunk(dl_doc=document):
        text = chunker.contextualize(chunk=doc_chunk).strip()
        if text:
            out.append(Chunk(text=text, headings=_headings(doc_chunk)))
    return out


def chunk_paged_document(chunker: HybridChunker, document: Any) -> list[Chunk]:
    """Chunks that never span a page break, so ``page`` is where the passage is.

    ``chunker`` must not merge peers itself (``make_chunker(..., merge=False)``): its merge
    crosses pages (a PDF without headings would become page-spanning runs). Neighbours
    are merged here instead, while they share headings and page and fit the budget.
    """
    budget = chunker.tokenizer.get_max_tokens()
    count = chunker.tokenizer.count_tokens
    # (headings, page, body, tokens of the contextualized text)
    merged: list[tuple[list[str], int | None, str, int]] = []
    for doc_chunk in chunker.chunk(dl_doc=document):
        body = doc_chunk.text.strip()
        if not body:
            continue
        headings, page = _headings(doc_chunk), _first_page(doc_chunk)
        if merged and merged[-1][:2] == (headings, page):
            _, _, previous, tokens = merged[-1]
            joined = previous + "\n" + body
            # WordPiece splits at whitespace, so token counts of newline-joined parts add
            # up; the exact count is needed only near the limit (a PDF has 1000s of lines).
            estimate = tokens + count(body)
            if estimate <= budget * 0.9 or (
                estimate <= budget * 1.1 and count(_with_context(headings, joined)) <= budget
            ):
                merged[-1] = (headings, page, joined, estimate)
                continue
        merged.append((headings, page, body, count(_with_context(headings, body))))
    return [Chunk(_with_context(h, body), h, page) for h, page, body, _ in merged]


def document_title(document: Any) -> str | None:
    """The document's title item, else its first section heading, else None."""
    from docling_core.types.doc.labels import DocItemLabel

    first_heading: str | None = None
    for item, _level in document.iterate_items():
        label = getattr(item, "label", None)
        text = (getattr(item, "text", "") or "").strip()
        if not text:
            continue
        if label == DocItemLabel.TITLE:
            return str(text)[:300]
        if label == DocItemLabel.SECTION_HEADER and first_heading is None:
            first_heading = str(text)[:300]
    return first_heading
