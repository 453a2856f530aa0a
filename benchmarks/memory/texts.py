"""What the memory suite stores: chunks of mixed lengths, and one large Markdown document.

onnxruntime's memory grows with the largest batch it has run (its attention tensors are
batch x 12 heads x length² floats), so the chunks are not all alike: per eight, two are a
sentence (~20 tokens), three a paragraph (~110), two two paragraphs (~230) and one three
paragraphs (truncated by the model at 256 tokens). Stored 64 per call, as an MCP client
batching its writes would, every call has a batch of long chunks in it.

The paragraphs are ``benchmarks/corpus.py``'s seeded ones: the same texts every run.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.corpus import Document, make_documents

PATTERN = ("sentence", "sentence", "one", "one", "one", "two", "two", "three")
PARAGRAPHS = {"sentence": 1, "one": 1, "two": 2, "three": 3}
SECTION_EVERY = 4  # paragraphs per heading in the large document


def mixed_chunks(count: int, seed: int) -> list[Document]:
    """``count`` chunks; chunk ``i`` is the same whatever ``count`` (its own paragraphs)."""
    paragraphs = [d.text for d in make_documents(3 * count, seed=seed)]
    out = []
    for i in range(count):
        kind = PATTERN[i % len(PATTERN)]
        parts = paragraphs[3 * i : 3 * i + PARAGRAPHS[kind]]
        text = parts[0].split(". ")[0] + "." if kind == "sentence" else " ".join(parts)
        out.append(Document(text, {"source": f"memory-{i // 100}", "i": i, "kind": kind}))
    return out


def write_large_markdown(path: Path, paragraphs: int, seed: int) -> int:
    """One Markdown file of ``paragraphs`` corpus paragraphs under headings; returns bytes.

    Its text comes from a stretch of the corpus the chunks above do not use.
    """
    docs = make_documents(paragraphs, seed=seed, start=10_000_000)
    lines = ["# A large document for the memory benchmark", ""]
    for n in range(0, paragraphs, SECTION_EVERY):
        lines += [f"## Part {n // SECTION_EVERY + 1}", ""]
        for doc in docs[n : n + SECTION_EVERY]:
            lines += [doc.text, ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    return path.stat().st_size
