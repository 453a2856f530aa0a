"""A stand-in for an Ollama server's ``/api/chat``, for LightRAG's LLM calls.

No LLM can run on the test machine (no model weights can be downloaded), so this real
HTTP server on 127.0.0.1 answers in the formats LightRAG parses, deriving its answers from
the text it is given, so graph queries return entities and relations that come from the
ingested documents:

- entity extraction (the prompt's ``---Input Text---`` block): every capitalised name
  (one or more capitalised words, e.g. "Billing Database") is an entity; two names in the
  same sentence are related, the sentence being the relation's description;
- keyword extraction: the query's capitalised names are low-level keywords, its other
  long words high-level ones;
- anything else (summaries, answers): a reply quoting the start of the prompt's context.

``fail`` makes every call answer HTTP 500 (an LLM that errors); ``calls`` counts them.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.support import StubService

_NAME = re.compile(r"\b[A-Z][a-zA-Z0-9]+(?:[ -][A-Z][a-zA-Z0-9]+)*\b")
# Capitalised only because they start a sentence, or too common to be entities.
_STOP = {
    "The",
    "This",
    "That",
    "These",
    "Those",
    "It",
    "Its",
    "A",
    "An",
    "In",
    "On",
    "Of",
    "And",
    "For",
    "With",
    "Every",
    "Each",
    "All",
    "When",
    "Which",
    "What",
    "Who",
    "Where",
    "How",
}
_INPUT = re.compile(r"---Input Text---\s*```\n(.*?)\n```", re.S)
_QUERY = re.compile(r"User Query:\s*(.*?)\n\n---Output---", re.S)
TUPLE = "<|#|>"
COMPLETE = "<|COMPLETE|>"


def names_in(text: str) -> list[str]:
    found: list[str] = []
    for match in _NAME.finditer(text):
        words = [w for w in match.group(0).split() if w not in _STOP]
        name = " ".join(words)
        if name and name not in found:
            found.append(name)
    return found


def extraction_reply(text: str) -> str:
    rows: list[str] = []
    entities: list[str] = []
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        names = names_in(sentence)
        for name in names:
            if name not in entities:
                entities.append(name)
                rows.append(f"entity{TUPLE}{name}{TUPLE}concept{TUPLE}{name}: {sentence.strip()}")
        for source, target in itertools.pairwise(names):
            rows.append(
                f"relation{TUPLE}{source}{TUPLE}{target}{TUPLE}related{TUPLE}{sentence.strip()}"
            )
    return "\n".join([*rows, COMPLETE])


def keywords_reply(query: str) -> str:
    low = names_in(query)
    high = [w for w in re.findall(r"[a-z]{5,}", query) if w not in {"which", "where"}]
    return json.dumps({"high_level_keywords": high[:5], "low_level_keywords": low[:5]})


def reply_to(prompt: str, system: str) -> str:
    """``prompt``: the last user message; ``system``: the system prompt (context)."""
    if (found := _INPUT.search(prompt)) is not None:
        return extraction_reply(found.group(1))
    if "missed or incorrectly formatted" in prompt:
        return COMPLETE  # a gleaning pass: nothing more to add
    if (query := _QUERY.search(prompt)) is not None and "high_level_keywords" in prompt:
        return keywords_reply(query.group(1))
    return "Stand-in answer based on the context: " + " ".join(system.split())[-300:]


class OllamaStandIn:
    def __init__(self) -> None:
        self.fail = False
        self.calls = 0
        self._lock = threading.Lock()
        self.service = StubService(self._handle)

    @property
    def url(self) -> str:
        return self.service.url

    def _handle(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        with self._lock:
            self.calls += 1
        if self.fail:
            return 500, {"error": "model runner crashed (stand-in failing on purpose)"}
        if method != "POST" or path != "/api/chat" or not isinstance(body, dict):
            return 404, {"error": f"no route {method} {path}"}
        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        users = [str(m.get("content", "")) for m in messages if m.get("role") == "user"]
        system = "\n".join(str(m.get("content", "")) for m in messages if m.get("role") == "system")
        return 200, {
            "model": body.get("model"),
            "message": {
                "role": "assistant",
                "content": reply_to(users[-1] if users else "", system),
            },
            "done": True,
        }


@contextmanager
def ollama_standin() -> Iterator[OllamaStandIn]:
    standin = OllamaStandIn()
    with standin.service:
        yield standin
