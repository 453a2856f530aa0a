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

``fail`` makes every call answer HTTP 500 (an LLM that errors); ``calls`` counts them. The
model list (``GET /api/tags``, what a dependency probe asks) is answered too, not counted.
``Misbehaving`` is a sibling for the fault tests: embeddings and chat that answer late, or
drop the connection half-way through the answer.
"""

from __future__ import annotations

import itertools
import json
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


MODEL_LIST = {"models": [{"name": "qwen2.5:7b", "model": "qwen2.5:7b", "size": 0}]}


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
        if method == "GET" and path == "/api/tags":
            # The model list a dependency probe asks for; no LLM call, so not counted.
            return (500, {"error": "down on purpose"}) if self.fail else (200, MODEL_LIST)
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


class Misbehaving:
    """An Ollama stand-in (``/api/embed`` and ``/api/chat``) that can go wrong on purpose.

    ``mode``: ``"ok"`` answers (embeddings from ``embed``, chat replies as ``reply_to``);
    ``"slow"`` answers only after ``SLOW_SECONDS`` (or when the stand-in closes); ``"drop"``
    sends the status line, headers and part of the body, then closes the connection.
    ``ok_requests`` more requests are answered normally before the mode applies, so a call
    can fail half-way through its batches. ``requests`` counts what arrived.
    """

    SLOW_SECONDS = 30.0

    def __init__(self, embed: Any) -> None:
        self.mode = "ok"
        self.ok_requests = 0
        self.requests = 0
        self._embed = embed
        self._lock = threading.Lock()
        self._closing = threading.Event()
        standin = self

        class _Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                with standin._lock:
                    standin.requests += 1
                    mode = "ok" if standin.ok_requests > 0 else standin.mode
                    standin.ok_requests = max(0, standin.ok_requests - 1)
                data = json.dumps(standin._answer(self.path, json.loads(raw or b"{}"))).encode()
                if mode == "slow":
                    standin._closing.wait(standin.SLOW_SECONDS)
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                if mode == "drop":
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def _answer(self, path: str, body: Any) -> Any:
        if path == "/api/embed":
            texts = body.get("input") or []
            texts = [texts] if isinstance(texts, str) else texts
            return {"model": body.get("model"), "embeddings": [self._embed(t) for t in texts]}
        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        users = [str(m.get("content", "")) for m in messages if m.get("role") == "user"]
        content = reply_to(users[-1] if users else "", "")
        return {"model": body.get("model"), "message": {"role": "assistant", "content": content}}

    def __enter__(self) -> Misbehaving:
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()  # slow answers go out now: no thread outlives the test
        self._server.shutdown()
        self._server.server_close()
