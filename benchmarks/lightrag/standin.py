"""An instant stand-in for an Ollama server's ``/api/chat``, for LightRAG's LLM calls.

No LLM runs on the benchmark machine, and a real one would make every figure the model's.
This answers at once, in the formats LightRAG parses (the same as the tests' stand-in;
benchmarks may not import from tests/), so the figures are LightRAG's and shield's:

- entity extraction (the prompt's ``---Input Text---`` block): every run of two or more
  capitalised words is an entity; two in one sentence are related, the sentence being
  the relation's description;
- a gleaning pass ("missed or incorrectly formatted"): nothing more;
- keyword extraction: the query's names are low-level keywords, its other long words
  high-level ones;
- anything else (description summaries, answers): a short reply quoting the context.

Run in a process of its own, so it shares no GIL with the harness or the server:

    python -m benchmarks.lightrag.standin   (prints {"url": ...}; serves until stdin closes)

``GET /stats`` answers the calls so far by kind.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from benchmarks.harness import REPO

_NAME = re.compile(r"\b[A-Z][a-zA-Z0-9]+(?:[ -][A-Z][a-zA-Z0-9]+)+\b")
_INPUT = re.compile(r"---Input Text---\s*```\n(.*?)\n```", re.S)
_QUERY = re.compile(r"User Query:\s*(.*?)\n\n---Output---", re.S)
TUPLE = "<|#|>"
COMPLETE = "<|COMPLETE|>"


def names_in(text: str) -> list[str]:
    return list(dict.fromkeys(m.group(0) for m in _NAME.finditer(text)))


def extraction_reply(text: str) -> str:
    rows: list[str] = []
    entities: set[str] = set()
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        names = names_in(sentence)
        for name in names:
            if name not in entities:
                entities.add(name)
                rows.append(f"entity{TUPLE}{name}{TUPLE}organization{TUPLE}{name}: {sentence}")
        for source, target in itertools.pairwise(names):
            rows.append(f"relation{TUPLE}{source}{TUPLE}{target}{TUPLE}related{TUPLE}{sentence}")
    return "\n".join([*rows, COMPLETE])


def keywords_reply(query: str) -> str:
    low = names_in(query)
    high = [w for w in re.findall(r"\b[a-z]{5,}\b", query) if w not in {"which", "where", "about"}]
    return json.dumps({"high_level_keywords": high[:5], "low_level_keywords": low[:5]})


def reply_to(prompt: str, system: str) -> tuple[str, str]:
    """(kind, reply) for the last user message and the system prompt."""
    if (found := _INPUT.search(prompt)) is not None:
        return "extract", extraction_reply(found.group(1))
    if "missed or incorrectly formatted" in prompt:
        return "glean", COMPLETE
    if (query := _QUERY.search(prompt)) is not None and "high_level_keywords" in prompt:
        return "keywords", keywords_reply(query.group(1))
    return "other", "Stand-in reply from the context: " + " ".join(system.split())[-200:]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    stats: dict[str, int]
    lock: threading.Lock

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as with a real Ollama
    server: _Server

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        with self.server.lock:
            stats = dict(self.server.stats)
        self._send(200, stats) if self.path == "/stats" else self._send(404, {})

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        body = json.loads(raw) if raw else {}
        if self.path != "/api/chat" or not isinstance(body, dict):
            self._send(404, {"error": f"no route {self.path}"})
            return
        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        users = [str(m.get("content", "")) for m in messages if m.get("role") == "user"]
        system = "\n".join(str(m.get("content", "")) for m in messages if m.get("role") == "system")
        kind, content = reply_to(users[-1] if users else "", system)
        with self.server.lock:
            self.server.stats[kind] = self.server.stats.get(kind, 0) + 1
        message = {"role": "assistant", "content": content}
        self._send(200, {"model": body.get("model"), "message": message, "done": True})

    def log_message(self, *args: Any) -> None:
        pass


def serve() -> None:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.stats, server.lock = {}, threading.Lock()
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}).start()
    print(json.dumps({"url": f"http://127.0.0.1:{server.server_address[1]}"}), flush=True)
    sys.stdin.read()  # until the parent closes our stdin (or dies)
    server.shutdown()


class StandInProcess:
    """The stand-in in a child process; ``url`` once started."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> StandInProcess:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.lightrag.standin"],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        self.url = json.loads(self._proc.stdout.readline())["url"]
        return self

    def stats(self) -> dict[str, int]:
        import httpx

        got: dict[str, int] = httpx.get(f"{self.url}/stats", timeout=5).json()
        return got

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    serve()
