"""A fixed, seeded corpus of ~500-character pseudo-English paragraphs, and fixed queries.

Every run with the same seed produces byte-identical texts, metadata and queries, so the
peer and shield-mcp are measured on the same data in the same run and across runs.
Each paragraph has a topic: half of its content words come from the topic's vocabulary,
so semantic search has something to find.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from typing import Any


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


TOPICS: dict[str, tuple[str, ...]] = {
    "ocean": _words(
        "ocean wave tide coral reef harbor sailor current salt whale shore island anchor "
        "storm fisher lighthouse deep vessel navy kelp lagoon dolphin beach sand mariner"
    ),
    "forest": _words(
        "forest pine oak moss trail ranger canopy fern bark deer owl timber grove root "
        "leaf mushroom cedar creek lumber hiker camp wolf birch clearing soil"
    ),
    "kitchen": _words(
        "kitchen bread oven flour butter recipe soup garlic pan knife onion pepper sauce "
        "baker dough spice salad cheese roast kettle honey chef pastry grill vinegar"
    ),
    "finance": _words(
        "market bank loan interest stock bond budget invoice tax profit revenue audit "
        "capital ledger credit debt equity dividend broker payroll asset inflation "
        "currency fund price"
    ),
    "medicine": _words(
        "doctor patient clinic vaccine fever nurse surgery dose symptom therapy blood "
        "heart lung diagnosis hospital virus pill allergy injury pulse wound scan remedy "
        "infection cure"
    ),
    "computing": _words(
        "server network database kernel compiler query cache thread socket packet memory "
        "disk index cluster latency protocol function module bug deploy container router "
        "token schema log"
    ),
    "music": _words(
        "piano guitar melody rhythm chord singer concert violin drum tempo orchestra "
        "harmony song album stage choir bass lyric flute jazz note score tune band opera"
    ),
    "space": _words(
        "planet orbit rocket comet galaxy star moon telescope asteroid nebula gravity "
        "launch satellite astronaut crater solar eclipse meteor cosmos station probe "
        "lunar mars saturn vacuum"
    ),
}

GENERAL: tuple[str, ...] = _words(
    "the a of and to in with for on near after before under over about every some many "
    "few old new small large quiet bright dark early late quick slow careful simple "
    "strange common rare warm cold long short good plain heavy light people morning "
    "evening city village road river house school window garden letter story question "
    "answer friend family work season year week hour place reason idea problem plan "
    "report finds keeps brings makes takes gives shows builds moves holds opens closes "
    "watches follows carries reads writes tests checks notes measures explains remembers "
    "changes starts ends turns"
)


@dataclass(frozen=True)
class Document:
    """One stored chunk: its text and the metadata sent with it."""

    text: str
    metadata: dict[str, Any]

    def as_tool_arg(self) -> dict[str, Any]:
        return {"text": self.text, "metadata": self.metadata}


def _sentence(rng: random.Random, topic: tuple[str, ...]) -> str:
    words = [
        rng.choice(topic) if rng.random() < 0.5 else rng.choice(GENERAL)
        for _ in range(rng.randint(8, 16))
    ]
    return " ".join(words).capitalize() + "."


def _paragraph(rng: random.Random, topic: tuple[str, ...], target: int = 500) -> str:
    sentences: list[str] = []
    length = 0
    while length < target - 40:
        sentence = _sentence(rng, topic)
        if length and length + 1 + len(sentence) > target + 60:
            break
        sentences.append(sentence)
        length += len(sentence) + (1 if length else 0)
    return " ".join(sentences)


def make_documents(count: int, seed: int = 20261123, start: int = 0) -> list[Document]:
    """Documents ``start .. start+count-1``; document ``i`` is the same whatever the range."""
    names = sorted(TOPICS)
    docs: list[Document] = []
    for i in range(start, start + count):
        rng = random.Random(f"{seed}:doc:{i}")
        topic = names[i % len(names)]
        text = _paragraph(rng, TOPICS[topic])
        docs.append(Document(text, {"doc": f"d{i // 10}", "i": i, "topic": topic}))
    return docs


def make_query_sets(counts: dict[str, int], seed: int = 20261123) -> dict[str, list[str]]:
    """Distinct short queries per named set; no query appears twice across all sets.

    Disjoint sets mean a server's query-embedding cache never hits across phases.
    """
    rng = random.Random(f"{seed}:queries")
    names = sorted(TOPICS)
    seen: set[str] = set()
    sets: dict[str, list[str]] = {}
    for tag, count in counts.items():
        queries: list[str] = []
        while len(queries) < count:
            topic = TOPICS[rng.choice(names)]
            words = [rng.choice(topic) for _ in range(rng.randint(3, 5))]
            words.insert(rng.randint(0, len(words)), rng.choice(GENERAL))
            query = " ".join(words)
            if query not in seen:
                seen.add(query)
                queries.append(query)
        sets[tag] = queries
    return sets


def probe_query(doc: Document) -> str:
    """A query made from a stored text: its first twelve words."""
    return " ".join(doc.text.split()[:12])


def digest(docs: list[Document]) -> str:
    """A short content hash of a document list (used as a cache key)."""
    h = hashlib.sha256()
    for doc in docs:
        h.update(json.dumps([doc.text, doc.metadata], sort_keys=True).encode())
    return h.hexdigest()[:16]
