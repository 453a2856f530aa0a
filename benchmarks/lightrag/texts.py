"""The suite's texts: the seeded corpus with named things in it, documents and queries.

LightRAG's graph is built from entities. The benchmark's stand-in LLM (``standin.py``)
takes every run of two or more capitalised words as an entity, so each chunk here is a
paragraph of ``benchmarks.corpus`` with one sentence naming two of ``NAMES`` (the two
become entities and the sentence their relation). Sentence-initial capitals are single
words and never entities. 320 names over a few thousand chunks: each entity is named in
a few dozen chunks, so LightRAG merges, summarises and re-embeds descriptions as it would
on a real corpus.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

from benchmarks.corpus import TOPICS, make_documents


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_FIRST = _words(
    "Orion Atlas Cobalt Harbor Juniper Falcon Marble Summit Copper Delta Granite Willow "
    "Aurora Beacon Cedar Ember Glacier Meridian Onyx Quartz"
)
_SECOND = _words(
    "Station Labs Works Institute Group Foundry Archive Council Bureau Depot Guild Clinic "
    "Observatory Exchange Network Studio"
)
NAMES: tuple[str, ...] = tuple(f"{a} {b}" for a in _FIRST for b in _SECOND)
_LINKS = ("works with", "supplies", "reports to", "shares data with", "audits", "hosts")


def chunk_texts(count: int, seed: int) -> list[str]:
    """Chunk ``i`` is the same whatever ``count``: a corpus paragraph and a naming sentence."""
    out = []
    for doc in make_documents(count, seed=seed):
        rng = random.Random(f"{seed}:names:{doc.metadata['i']}")
        first, second = rng.sample(NAMES, 2)
        topic = TOPICS[doc.metadata["topic"]]
        what = f"{rng.choice(topic)} {rng.choice(topic)}"
        link = f"{first} {rng.choice(_LINKS)} {second} on the {what}"
        sentences = doc.text.split(". ")
        sentences.insert(rng.randint(0, len(sentences) - 1), link)
        out.append(". ".join(sentences))
    return out


def digest(texts: list[str]) -> str:
    h = hashlib.sha256()
    for text in texts:
        h.update(text.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def write_markdown(folder: Path, texts: list[str], per_doc: int) -> list[Path]:
    """One Markdown file per ``per_doc`` chunks: a title, then one section per chunk.

    Section headings are lowercase and short, so the pipeline's chunker keeps one chunk
    per section and the stand-in LLM finds no entity in them.
    """
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n, start in enumerate(range(0, len(texts), per_doc)):
        lines = [f"# Report {n}", ""]
        for k, text in enumerate(texts[start : start + per_doc]):
            lines += [f"## part {k + 1}", "", text, ""]
        path = folder / f"report-{n:04d}.md"
        path.write_text("\n".join(lines))
        paths.append(path)
    return paths


def queries(count: int, seed: int, tag: str) -> list[tuple[str, str, list[str]]]:
    """Distinct questions per ``tag``: (question, the name in it, two topic words).

    Each names one entity (the stand-in LLM's low-level keyword) and two topic words
    (its high-level ones), so every graph mode has something to walk from.
    """
    rng = random.Random(f"{seed}:queries:{tag}")
    topics = sorted(TOPICS)
    out: list[tuple[str, str, list[str]]] = []
    seen: set[str] = set()
    while len(out) < count:
        name = rng.choice(NAMES)
        words = rng.sample(TOPICS[rng.choice(topics)], 2)
        question = f"what does {name} do about {words[0]} and {words[1]}"
        if question not in seen:
            seen.add(question)
            out.append((question, name, words))
    return out
