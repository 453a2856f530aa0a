"""docs/API_REFERENCE.md's REST examples, sent to real orchestrators over HTTP.

Every route of the OpenAPI schema has a section with an example in the doc, and every
example answers as documented (status, the headers shown, the body; ids and times only by
type). The servers are the ones the doc's "About the examples" table describes, from the
settings written there; they run on uvicorn on 127.0.0.1, the example site beside them.

``API_REFERENCE_DUMP=<file>`` writes what each example really answered (in the doc's terms:
documented ids, paths and ports) to that file, for updating the doc after a change.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from knowledge.embeddings.local import LocalEmbedder
from orchestrator.settings import OrchestratorSettings
from tests.api_reference import (
    GENERATED_BODY,
    VARYING,
    Example,
    Substitutions,
    World,
    differences,
    example_servers,
    read,
    run_examples,
)
from tests.orchestrator.http.conftest import Api, running, serving

# Servers of the doc's table that run no worker: their jobs stay queued.
IDLE_SERVERS = frozenset({"idle"})
_HTTP_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


def route_of(example: Example) -> tuple[str, str]:
    method, target, *_ = example.request.splitlines()[0].split()
    return method, target.split("?", 1)[0]


def matches_template(path: str, template: str) -> bool:
    pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
    return re.fullmatch(pattern, path) is not None


async def test_every_route_has_a_section_with_an_example(idle: Api) -> None:
    reference = read()
    schema = (await idle.http.get("/openapi.json")).json()
    routes = [
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method in operations
        if method.upper() in _HTTP_METHODS
    ]
    assert len(routes) >= 10  # the schema was read
    missing, untried = [], []
    for method, path in routes:
        heading = f"{method} {path}"
        if heading not in reference.sections:
            missing.append(heading)
        elif not any(
            e.protocol == "http"
            and e.section == heading
            and route_of(e)[0] == method
            and matches_template(route_of(e)[1], path)
            for e in reference.examples
        ):
            untried.append(heading)
    assert missing == [], "routes without a section (### METHOD /path) in API_REFERENCE.md"
    assert untried == [], "route sections without an example of that route"


# -- running the examples -------------------------------------------------------------------


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # names lowercased
    body: str


def parse_request(text: str) -> Request:
    head, _, body = text.partition("\n\n")
    first, *lines = head.splitlines()
    method, target, *_ = first.split()
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        # The client computes these itself, from what it really sends.
        if name.lower() not in ("host", "content-length"):
            headers[name.strip()] = value.strip()
    generated = GENERATED_BODY.match(body.strip())
    data = b" " * int(generated.group(1).replace(",", "")) if generated else body.strip().encode()
    return Request(method, target, headers, data)


def parse_answer(text: str) -> Answer:
    head, _, body = text.partition("\n\n")
    first, *lines = head.splitlines()
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(int(first.split()[1]), headers, body)


def sse_events(text: str) -> list[dict[str, Any]]:
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            events.append({"event": fields["event"], "data": json.loads(fields["data"])})
    return events


def body_differences(documented: Answer, actual: Answer, vary: frozenset[str]) -> list[str]:
    kind = documented.headers.get("content-type", "")
    if kind.startswith("text/event-stream"):
        return differences(sse_events(documented.body), sse_events(actual.body), vary)
    if kind.startswith("text/plain"):
        # An excerpt of Prometheus' text format: its comments as they are, its samples by
        # series (values change).
        lines = actual.body.splitlines()
        out = []
        for line in documented.body.strip().splitlines():
            if line.startswith("#") and line not in lines:
                out.append(f"no line {line!r}")
            elif not line.startswith("#"):
                series = line.rsplit(" ", 1)[0]
                if not any(have.rsplit(" ", 1)[0] == series for have in lines):
                    out.append(f"no series {series!r}")
        return out
    if not documented.body.strip():
        return [] if not actual.body.strip() else [f"body: not documented: {actual.body[:300]}"]
    try:
        real = json.loads(actual.body)
    except ValueError:
        return [f"body: not JSON: {actual.body[:300]}"]
    return differences(json.loads(documented.body), real, vary)


def _pretty(answer: httpx.Response, text: str) -> str:
    lines = [f"HTTP/1.1 {answer.status_code} {answer.reason_phrase}"]
    lines += [f"{k}: {v}" for k, v in answer.headers.items() if k.lower() != "date"]
    body = text
    if answer.headers.get("content-type", "").startswith("application/json"):
        body = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    return "\n".join(lines) + "\n\n" + body


async def attempt(
    example: Example, http: httpx.AsyncClient, subs: Substitutions, dump: dict[str, str]
) -> list[str]:
    documented = parse_answer(example.response)
    request = parse_request(subs.to_real(example.request))
    response = await http.request(
        request.method, request.target, headers=request.headers, content=request.body
    )
    text = subs.to_documented(response.text)
    actual = Answer(response.status_code, dict(response.headers), text)
    problems: list[str] = []
    if documented.headers.get("content-type", "").startswith("application/json"):
        with suppress(ValueError):  # an answer that is not JSON is reported below
            subs.learn(json.loads(documented.body), response.json(), problems, "")
        # Again in the doc's terms, now with this answer's job id known.
        actual.body = subs.to_documented(response.text)
    dump[example.name] = _pretty(response, actual.body)
    if actual.status != documented.status:
        problems.append(f"status: documented {documented.status}, got {actual.status}")
    for name, value in documented.headers.items():
        got = subs.to_documented(actual.headers.get(name, "(absent)"))
        if got != value:
            problems.append(f"header {name}: documented {value!r}, got {got!r}")
    return problems + body_differences(documented, actual, VARYING | example.vary)


@pytest.fixture
async def servers(
    tmp_path: Path, docs_dir: Path, local_embedder: LocalEmbedder
) -> AsyncIterator[World[httpx.AsyncClient]]:
    async def start(
        stack: AsyncExitStack, name: str, settings: dict[str, Any]
    ) -> httpx.AsyncClient:
        orchestrator = await stack.enter_async_context(
            running(
                OrchestratorSettings(data_dir=tmp_path / name, **settings),
                local_embedder,
                workers=name not in IDLE_SERVERS,
            )
        )
        url = await stack.enter_async_context(serving(orchestrator.app))
        return await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=120))

    async with example_servers("http", docs_dir, start) as world:
        yield world


@pytest.mark.slow  # jobs run: a docling child converts, the crawler fetches
@pytest.mark.timeout(300)
async def test_the_rest_examples_answer_as_documented(servers: World[httpx.AsyncClient]) -> None:
    examples, problems = await run_examples(servers, "http", attempt)
    assert len(examples) >= 20  # the doc was read
    assert not problems, "\n".join(problems)
