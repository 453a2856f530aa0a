"""The load itself: N MCP sessions (official ``mcp`` client, streamable HTTP), each making
its calls paced at ``rate`` per second, a seeded mix of every tool.

Per session, call ``k`` is due at ``start + k / rate`` (sessions offset evenly within the
first interval), so the offered load is ``sessions * rate`` calls per second whatever the
latency: a slow answer delays that session's next call, never the others'. A call's time
is the ``ClientSession.call_tool`` round trip. Every ``job_every``-th call of a session
starts a job (``crawl_web`` of one page of the local site, or ``ingest_doc`` of a small
base64 note, alternately); ``get_job_status`` asks about the session's latest jobs, which
are live while the load runs.
"""

from __future__ import annotations

import base64
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import anyio

from benchmarks.corpus import TOPICS, make_documents, make_query_sets
from benchmarks.mcp_load import connect, structured, texts

COLLECTION = "load"
TEAMS = ("ops", "dev", "sales", "legal")
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})

# Weights of the calls between jobs (a job every job_every calls comes on top).
MIX: dict[str, float] = {
    "qdrant_store": 0.15,
    "qdrant_find": 0.30,
    "qdrant_find paged": 0.15,
    "lightrag_query": 0.15,
    "get_job_status": 0.25,
}


@dataclass(frozen=True)
class Plan:
    sessions: int
    calls: int  # timed calls per session
    rate: float  # calls per second per session
    job_every: int = 25
    store_batch: int = 8
    lightrag: bool = True
    seed: int = 20261123


@dataclass
class Recorded:
    """What the sessions saw: latencies (ms) and errors per tool, job ids, timeline."""

    samples: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    jobs: list[str] = field(default_factory=list)
    calls_done: int = 0
    began: float = 0.0
    ended: float = 0.0


def note(session: int, k: int) -> str:
    """A small Markdown note, different for every call (so each job has new text)."""
    rng = random.Random(f"note:{session}:{k}")
    topic = rng.choice(sorted(TOPICS))
    words = " ".join(rng.choice(TOPICS[topic]) for _ in range(60))
    return f"# Note {session}-{k}\n\nA {topic} note for the load run. {words}.\n"


class SessionScript:
    """One session's calls: which tool, with which arguments, in a seeded order."""

    def __init__(self, n: int, plan: Plan, site_url: str, queries: list[str]) -> None:
        self.n = n
        self.plan = plan
        self.site_url = site_url
        self.queries = queries
        self.rng = random.Random(f"{plan.seed}:session:{n}")
        self.jobs: list[str] = []
        weights = dict(MIX)
        if not plan.lightrag:
            weights.pop("lightrag_query")
        self.tools = list(weights)
        self.weights = list(weights.values())
        self._job_kind = n % 2
        self._stored = 0

    def call(self, k: int) -> tuple[str, dict[str, Any]]:
        """(label, tool arguments) of call ``k``; the label is the tool, or a variant."""
        if k % self.plan.job_every == (self.n % self.plan.job_every):
            self._job_kind ^= 1
            return self.job(k)
        label = self.rng.choices(self.tools, self.weights)[0]
        if label == "get_job_status" and not self.jobs:
            label = "qdrant_find"
        query = self.rng.choice(self.queries)
        if label == "qdrant_store":
            return label, {"documents": self.batch(), "collection": COLLECTION}
        if label == "qdrant_find":
            team = self.rng.choice(TEAMS)
            return label, {
                "query": query,
                "limit": 5,
                "filter": {"team": team, "year": {"gte": 2019}},
                "collection": COLLECTION,
            }
        if label == "qdrant_find paged":
            offset = self.rng.choice((0, 10, 20, 30))
            return label, {"query": query, "limit": 10, "offset": offset, "collection": COLLECTION}
        if label == "lightrag_query":
            return label, {"query": query, "mode": "naive", "top_k": 5, "collection": COLLECTION}
        return label, {"job_id": self.rng.choice(self.jobs[-3:])}

    def job(self, k: int) -> tuple[str, dict[str, Any]]:
        if self._job_kind:
            # One page each, every URL its own (the query string is ignored by the site):
            # an identical request still running would be answered with that job instead.
            page = (self.n * 37 + k) % 100 + 1
            return "crawl_web", {
                "url": f"{self.site_url}page-{page:02d}.html?call={self.n}-{k}",
                "max_pages": 1,
                "max_depth": 0,
                "collection": COLLECTION,
            }
        content = base64.b64encode(note(self.n, k).encode()).decode()
        return "ingest_doc", {
            "content_base64": content,
            "filename": f"note-{self.n}-{k}.md",
            "collection": COLLECTION,
            "metadata": {"team": self.rng.choice(TEAMS)},
        }

    def batch(self) -> list[dict[str, Any]]:
        start = (self.n * 100_000 + self._stored) % 1_000_000
        docs = make_documents(self.plan.store_batch, seed=self.plan.seed, start=start)
        self._stored += self.plan.store_batch
        return [
            {
                "text": d.text,
                "metadata": {
                    "source": f"load-{self.n}-{start + i}",
                    "team": TEAMS[(start + i) % len(TEAMS)],
                    "year": 2015 + (start + i) % 10,
                    "topic": d.metadata["topic"],
                },
            }
            for i, d in enumerate(docs)
        ]


async def _call(
    session: Any, tool: str, args: dict[str, Any]
) -> tuple[dict[str, Any] | None, str | None]:
    """(structured answer, None) or (None, the error as the client saw it)."""
    try:
        result = await session.call_tool(tool, args)
    except Exception as exc:  # a transport failure is an error of this call too
        return None, f"{type(exc).__name__}: {exc}"[:300]
    if result.is_error:
        return None, " ".join(texts(result))[:300]
    try:
        return structured(result), None
    except ValueError as exc:
        return None, f"unreadable answer: {exc}"[:300]


def tool_of(label: str) -> str:
    return label.split(" ", 1)[0]


async def prefill(url: str, plan: Plan, site_url: str) -> list[str]:
    """Untimed: a stored corpus to find in, and one job of each kind run to the end so that
    LightRAG's naive mode has chunks. Returns what went wrong (nothing, normally)."""
    problems: list[str] = []
    async with connect(url) as conn:
        script = SessionScript(plan.sessions, plan, site_url, ["warm up"])
        for _ in range(8):
            _, error = await _call(
                conn.session,
                "qdrant_store",
                {"documents": script.batch(), "collection": COLLECTION},
            )
            if error:
                problems.append(f"prefill store: {error}")
        for label, args in (script.job(0), script.job(1)):
            answer, error = await _call(conn.session, label, args)
            if error or answer is None:
                problems.append(f"prefill {label}: {error}")
                continue
            job_id = str(answer["job_id"])
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                status, error = await _call(
                    conn.session, "get_job_status", {"job_id": job_id, "wait_seconds": 10}
                )
                if error or status is None:
                    problems.append(f"prefill status: {error}")
                    break
                if status["status"] in TERMINAL:
                    if status["status"] != "succeeded":
                        problems.append(f"prefill {label} job {status['status']}: {status}")
                    break
    return problems


async def run_load(
    url: str,
    plan: Plan,
    site_url: str,
    *,
    on_progress: Callable[[float], Awaitable[None]] | None = None,
) -> Recorded:
    """Every session's calls; ``on_progress(fraction done)`` is awaited as calls complete."""
    rec = Recorded()
    queries = make_query_sets({"load": 400}, seed=plan.seed)["load"]
    total = plan.sessions * plan.calls
    async with AsyncExitStack() as stack:
        sessions = []
        for _ in range(plan.sessions):
            sessions.append((await stack.enter_async_context(connect(url))).session)
        scripts = [SessionScript(n, plan, site_url, queries) for n in range(plan.sessions)]
        # Untimed: each session's first call pays for its connection.
        for session in sessions:
            await _call(session, "qdrant_find", {"query": "warm up", "collection": COLLECTION})
        rec.began = time.perf_counter()

        async def one(n: int) -> None:
            session, script = sessions[n], scripts[n]
            for k in range(plan.calls):
                due = rec.began + (k + n / plan.sessions) / plan.rate
                await anyio.sleep(max(0.0, due - time.perf_counter()))
                label, args = script.call(k)
                start = time.perf_counter()
                answer, error = await _call(session, tool_of(label), args)
                elapsed = (time.perf_counter() - start) * 1000
                if error is not None:
                    rec.errors[label].append(error)
                else:
                    rec.samples[label].append(elapsed)
                    if label in ("crawl_web", "ingest_doc") and answer is not None:
                        script.jobs.append(str(answer["job_id"]))
                        rec.jobs.append(str(answer["job_id"]))
                rec.calls_done += 1
                if on_progress is not None:
                    await on_progress(rec.calls_done / total)

        async with anyio.create_task_group() as group:
            for n in range(plan.sessions):
                group.start_soon(one, n)
        rec.ended = time.perf_counter()
    return rec


async def drain(url: str, job_ids: list[str], limit_s: float) -> dict[str, Any]:
    """Wait (up to ``limit_s``) until every job started under load has ended; their states."""
    states: dict[str, int] = defaultdict(int)
    failures: list[str] = []
    start = time.monotonic()
    async with connect(url) as conn:
        for job_id in job_ids:
            while True:
                left = limit_s - (time.monotonic() - start)
                wait = int(max(0, min(10, left)))
                job, error = await _call(
                    conn.session, "get_job_status", {"job_id": job_id, "wait_seconds": wait}
                )
                if error is not None or job is None:
                    states["unknown"] += 1
                    failures.append(f"{job_id}: {error}")
                    break
                if job["status"] in TERMINAL or left <= 0:
                    states[job["status"]] += 1
                    if job["status"] == "failed":
                        failures.append(f"{job_id}: {job.get('error')}"[:300])
                    break
    return {
        "states": dict(states),
        "drain_s": time.monotonic() - start,
        "failures": failures[:10],
    }
