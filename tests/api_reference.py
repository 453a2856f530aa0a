"""docs/API_REFERENCE.md's examples, read out of the document so that tests can run them.

An example is an HTML comment, then two fenced blocks: the request, then the response.

    <!-- example: ingest-document server=live vary=created_at -->
    ```http                                  ```json
    POST /ingest-async HTTP/1.1              {"name": "qdrant_find", "arguments": {...}}
    ...                                      ```
    ```                                      ```json
    ```http                                  {"structuredContent": {...}, "isError": false}
    HTTP/1.1 202 Accepted                    ```
    ...
    ```

``http`` blocks are REST examples, ``json`` blocks MCP ``tools/call`` examples. ``server``
names a configuration the doc describes; ``vary`` adds keys whose values change from run to
run (checked for their type only) to ``VARYING``; ``repeat`` sends the request again until
the answer is the documented one (a long-poll waiting for a job to finish).

Fixtures the examples need are in the doc too: ``<!-- file: /srv/docs/x.md -->`` before a
block gives a file to put in the ingest root, ``<!-- page: http://127.0.0.1:8080/ -->`` a
page of the example site. The tests map those documented places to real ones (a tmp dir, a
free port) with ``Substitutions``, which also learn each documented job id's real one.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tests.support import REPO, serve_pages

DOC = REPO / "docs" / "API_REFERENCE.md"
# What the examples write for the ingest root and the example site (see the doc's end).
DOC_ROOT = "/srv/docs"
DOC_SITE = "http://127.0.0.1:8080"
NOT_FOUND = "<h1>Not found</h1>"  # the example site's answer to any other path

# Values that differ on every run: only their type is checked. A job id is also learned,
# so that a later example naming the documented id reaches the real job.
VARYING = frozenset(
    {
        "job_id",
        "created_at",
        "updated_at",
        "started_at",
        "finished_at",
        "ingested_at",
        "total_ms",
        "retrieval_ms",
        "answer_ms",
    }
)
LEARNED = frozenset({"job_id"})
# Cosine scores of the int8 model move in the last digits between CPUs (their int8 kernels
# differ); a documented score is right when it is within this of the real one.
FLOAT_TOLERANCE = 0.01
ELLIPSIS = "\u2026"
# A body written as "…28,224,171 bytes…": that many bytes are sent (a 413 example).
GENERATED_BODY = re.compile(r"^\u2026\s*([\d,]+) bytes\s*\u2026$")

# Where a run writes what each example really answered, in the doc's terms (documented ids,
# paths and ports), for updating the doc after a change.
DUMP = os.environ.get("API_REFERENCE_DUMP")
MAX_REPEATS = 200  # a long-poll answers at the next change of its job: this many at most

_SETTING = re.compile(r"`SHIELD_([A-Z0-9_]+)=([^`]*)`")
_MARKER = re.compile(r"^<!--\s*(example|file|page):\s*(.*?)\s*-->\s*$")
_FENCE = re.compile(r"^```(\S*)\s*$")
_HEADING = re.compile(r"^(#{2,4})\s+(.*?)\s*$")


@dataclass
class Example:
    name: str
    server: str
    protocol: str  # "http" (REST) or "mcp"
    request: str
    response: str
    section: str  # the heading it sits under
    line: int
    vary: frozenset[str] = frozenset()
    repeat: bool = False

    def __str__(self) -> str:
        return f"example {self.name!r} (API_REFERENCE.md line {self.line})"


@dataclass
class Reference:
    examples: list[Example]
    files: dict[str, str]  # documented path -> content
    pages: dict[str, str]  # documented URL -> HTML
    sections: list[str]  # every heading, in order


def _options(text: str) -> tuple[str, dict[str, str]]:
    name, *rest = text.split()
    options: dict[str, str] = {}
    for item in rest:
        key, _, value = item.partition("=")
        options[key] = value
    return name, options


def read(path: Path = DOC) -> Reference:
    lines = path.read_text().splitlines()
    examples: list[Example] = []
    files: dict[str, str] = {}
    pages: dict[str, str] = {}
    sections: list[str] = []
    section = ""
    pending: tuple[str, str, int] | None = None  # (marker kind, marker text, its line)
    blocks: list[tuple[str, str]] = []  # fenced blocks since the marker: (language, text)
    i = 0
    while i < len(lines):
        line = lines[i]
        heading = _HEADING.match(line)
        marker = _MARKER.match(line)
        fence = _FENCE.match(line)
        if fence:
            end = i + 1
            while end < len(lines) and lines[end].strip() != "```":
                end += 1
            if pending is not None:
                blocks.append((fence.group(1), "\n".join(lines[i + 1 : end]) + "\n"))
            i = end
        elif heading:
            section = heading.group(2)
            sections.append(section)
        elif marker:
            if pending is not None:
                raise ValueError(f"line {i + 1}: a marker before the last one got its blocks")
            pending, blocks = (marker.group(1), marker.group(2), i + 1), []
        if pending is not None and blocks:
            kind, text, at = pending
            if kind in ("file", "page"):
                (files if kind == "file" else pages)[text] = blocks[0][1]
                pending = None
            elif len(blocks) == 2:
                name, options = _options(text)
                (lang, request), (_, response) = blocks
                examples.append(
                    Example(
                        name=name,
                        server=options.get("server", ""),
                        protocol="http" if lang == "http" else "mcp",
                        request=request,
                        response=response,
                        section=section,
                        line=at,
                        vary=frozenset(filter(None, options.get("vary", "").split(","))),
                        repeat="repeat" in options,
                    )
                )
                pending = None
        i += 1
    if pending is not None:
        raise ValueError(f"line {pending[2]}: the marker has no blocks after it")
    return Reference(examples, files, pages, sections)


def marked_blocks(path: Path) -> dict[tuple[str, str], tuple[str, str]]:
    """Every ``<!-- kind: name -->`` marker of a doc and the fenced block right after it:
    (kind, name) -> (language, text). CLIENT_INTEGRATION.md marks its snippets so."""
    lines = path.read_text().splitlines()
    found: dict[tuple[str, str], tuple[str, str]] = {}
    for i, line in enumerate(lines):
        marker = re.match(r"^<!--\s*([a-z]+):\s*(\S+)\s*-->\s*$", line)
        if marker is None:
            continue
        start = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        end = next(j for j in range(start + 1, len(lines)) if lines[j].strip() == "```")
        lang = lines[start][3:].strip()
        found[(marker.group(1), marker.group(2))] = (lang, "\n".join(lines[start + 1 : end]) + "\n")
    return found


# -- documented places and ids <-> real ones ------------------------------------------------


@dataclass
class Substitutions:
    """Documented text -> the real text of this run (a tmp dir, a port, a job id)."""

    real: dict[str, str] = field(default_factory=dict)

    def to_real(self, text: str) -> str:
        for documented, real in self._longest_first(self.real.items()):
            text = text.replace(documented, real)
        return text

    def to_documented(self, text: str) -> str:
        for real, documented in self._longest_first((r, d) for d, r in self.real.items()):
            text = text.replace(real, documented)
        return text

    @staticmethod
    def _longest_first(pairs: Any) -> list[tuple[str, str]]:
        return sorted(pairs, key=lambda pair: -len(pair[0]))

    def learn(self, documented: Any, actual: Any, problems: list[str], where: str) -> None:
        """Walks both answers; a documented job id that is new here maps to the real one."""
        if isinstance(documented, dict) and isinstance(actual, dict):
            for key, value in documented.items():
                if key not in actual:
                    continue
                if key in LEARNED and isinstance(value, str) and isinstance(actual[key], str):
                    self._learn_one(value, actual[key], problems, f"{where}.{key}")
                else:
                    self.learn(value, actual[key], problems, f"{where}.{key}")
        elif isinstance(documented, list) and isinstance(actual, list):
            for n, (d, a) in enumerate(zip(documented, actual, strict=False)):
                self.learn(d, a, problems, f"{where}[{n}]")

    def _learn_one(self, documented: str, actual: str, problems: list[str], where: str) -> None:
        known = self.real.get(documented)
        if known is None:
            if actual in self.real.values() and documented != actual:
                others = [d for d, r in self.real.items() if r == actual]
                problems.append(f"{where}: the doc calls this job {documented}, earlier {others}")
            else:
                self.real[documented] = actual
        elif known != actual:
            problems.append(f"{where}: {documented} was another job in an earlier example")


# -- comparing a documented answer with the real one ----------------------------------------


def _kind(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return repr(value) if value is None else "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def _same_string(documented: str, actual: str) -> bool:
    if ELLIPSIS not in documented:
        return documented == actual
    head, _, tail = documented.partition(ELLIPSIS)
    return actual.startswith(head) and actual.endswith(tail) and len(actual) >= len(head + tail)


def differences(documented: Any, actual: Any, vary: frozenset[str], where: str = "") -> list[str]:
    """Where the real answer is not the documented one ([] when it is)."""
    here = where or "(top)"
    if isinstance(documented, dict) and isinstance(actual, dict):
        out = []
        for key in documented.keys() - actual.keys():
            out.append(f"{where}.{key}: documented, but not in the answer")
        for key in actual.keys() - documented.keys():
            out.append(
                f"{where}.{key}: in the answer ({json.dumps(actual[key])[:200]}), not documented"
            )
        for key in documented.keys() & actual.keys():
            if key in vary:
                if _kind(documented[key]) != _kind(actual[key]):
                    out.append(
                        f"{where}.{key}: documented a {_kind(documented[key])}, "
                        f"got {json.dumps(actual[key])[:200]}"
                    )
                continue
            out += differences(documented[key], actual[key], vary, f"{where}.{key}")
        return out
    if isinstance(documented, list) and isinstance(actual, list):
        if len(documented) != len(actual):
            return [f"{here}: documented {len(documented)} items, got {len(actual)}: {actual}"]
        out = []
        for n, (d, a) in enumerate(zip(documented, actual, strict=True)):
            out += differences(d, a, vary, f"{where}[{n}]")
        return out
    if isinstance(documented, str) and isinstance(actual, str):
        return (
            []
            if _same_string(documented, actual)
            else [f"{here}: documented {documented!r}, got {actual!r}"]
        )
    if _kind(documented) == "number" and _kind(actual) == "number":
        if isinstance(documented, float) or isinstance(actual, float):
            close = abs(float(documented) - float(actual)) <= FLOAT_TOLERANCE
        else:
            close = documented == actual
        return [] if close else [f"{here}: documented {documented}, got {actual}"]
    if documented == actual and _kind(documented) == _kind(actual):
        return []
    return [f"{here}: documented {json.dumps(documented)}, got {json.dumps(actual)[:300]}"]


# -- the world the examples run in --------------------------------------------------------


def server_settings(name: str) -> dict[str, str]:
    """The settings (lowercase names) the doc's "About the examples" table gives ``name``."""
    for row in DOC.read_text().split("## About the examples", 1)[1].splitlines():
        if row.startswith(f"| `{name}` |"):
            return {key.lower(): value for key, value in _SETTING.findall(row)}
    raise AssertionError(f"the doc's 'About the examples' table has no server {name!r}")


@contextmanager
def example_world(reference: Reference, ingest_root: Path) -> Iterator[Substitutions]:
    """The doc's files in ``ingest_root`` and its site on a free port, for as long as the
    block runs; yields the substitutions from the documented places to these."""
    pages = {url.removeprefix(DOC_SITE): page for url, page in reference.pages.items()}
    with serve_pages(pages, whole=True, not_found=NOT_FOUND) as site:
        subs = Substitutions({DOC_ROOT: str(ingest_root), DOC_SITE: site})
        for path, content in reference.files.items():
            target = Path(subs.to_real(path))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
        yield subs


def write_dump(path: str, answers: dict[str, str]) -> None:
    """What each example really answered, by name (API_REFERENCE_DUMP)."""
    Path(path).write_text("\n\n".join(f"## {name}\n{text}" for name, text in answers.items()))


ClientT = TypeVar("ClientT")
# The doc read, a client of each server its examples name, and the substitutions.
World = tuple[Reference, dict[str, ClientT], Substitutions]
# Starts the named server of the doc's table with these settings (its own names, lowercase)
# on the stack, and gives a client of it.
Start = Callable[[AsyncExitStack, str, dict[str, Any]], Awaitable[ClientT]]
# One try of an example with the client of its server: its problems ([] when it answered as
# documented). It puts what it answered, in the doc's terms, into the dump under its name.
Attempt = Callable[[Example, ClientT, Substitutions, dict[str, str]], Awaitable[list[str]]]


@asynccontextmanager
async def example_servers(
    protocol: str, ingest_root: Path, start: Start[ClientT]
) -> AsyncIterator[World[ClientT]]:
    """The doc's world (``example_world``) and a client of every server the ``protocol``
    examples name, started by ``start`` with its settings in real terms; all stop after
    the block."""
    reference = read()
    async with AsyncExitStack() as stack:
        subs = stack.enter_context(example_world(reference, ingest_root))
        clients = {}
        for name in sorted({e.server for e in reference.examples if e.protocol == protocol}):
            settings = {key: subs.to_real(v) for key, v in server_settings(name).items()}
            clients[name] = await start(stack, name, settings)
        yield reference, clients, subs


async def run_examples(
    world: World[ClientT], protocol: str, attempt: Attempt[ClientT]
) -> tuple[list[Example], list[str]]:
    """The ``protocol`` examples, run in order, and their problems. A ``repeat`` example is
    tried again until it has none; the answers go to the API_REFERENCE_DUMP file when it
    is set."""
    reference, clients, subs = world
    examples = [e for e in reference.examples if e.protocol == protocol]
    problems: list[str] = []
    dump: dict[str, str] = {}
    try:
        for example in examples:
            for _ in range(MAX_REPEATS if example.repeat else 1):
                found = await attempt(example, clients[example.server], subs, dump)
                if not found:
                    break
            problems += [f"{example}: {p}" for p in found]
    finally:
        if DUMP:
            write_dump(DUMP, dump)
    return examples, problems
