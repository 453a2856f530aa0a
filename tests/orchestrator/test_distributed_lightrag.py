"""One writer per LightRAG workspace, across processes, on this machine's real PostgreSQL
and Redis: a `shield-mcp orchestrator` and two `shield-mcp worker` processes ingest
documents into ONE collection at the same time; no graph write is lost, no document is
stored twice.

What is lost without the cross-process lock (``orchestrator/graphrag/locks.py``): two
workers read the same entity node, each merges its own document's chunk into it and writes
it back, and the last write wins. So every document here names one shared entity
("Billing Database") and the test checks in PostgreSQL that its node references a chunk of
every document, besides every document's own entities and relations.

No LLM can run on this machine (no model weights can be downloaded): the workers' LLM is
``tests/ollama_standin.py``, a real HTTP server in this process answering Ollama's
/api/chat with entities taken from capitalised names and relations from names that share
a sentence. No Qdrant server can run here either: each worker keeps LightRAG's vectors in
an embedded store of its own (its data dir), and the orchestrator, which runs no workers
and has no shared vector store, refuses LightRAG queries.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.ollama_standin import ollama_standin
from tests.support import SHIELD, HttpProcess, server_env

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.slow,
    # Three processes start (imports, docling children), then ten documents are converted,
    # embedded and indexed by LightRAG one workspace writer at a time.
    pytest.mark.timeout(420),
]

PSQL = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-q"]
REDIS_URL = "redis://127.0.0.1:6379/0"
HANG = 300.0  # guards against a hang only
COLLECTION = "shared"
SHARED = "Billing Database"
SEP = "<SEP>"  # LightRAG's GRAPH_FIELD_SEP between the chunk ids of a node's source_id
# One word per document: its own two entities are "<word> Gateway" and "<word> Ledger".
WORDS = ["Aurora", "Borealis", "Cobalt", "Dynamo", "Ember", "Falcon", "Granite", "Harbor"]
WORDS += ["Indigo", "Juniper"]


def document_text(word: str) -> str:
    # Two sentences, so the stand-in relates the shared entity to the gateway and the
    # gateway to the ledger (names in one sentence are related), nothing else.
    return (
        f"The {SHARED} feeds the {word} Gateway every night.\n\n"
        f"Each morning the {word} Gateway reconciles the {word} Ledger.\n"
    )


def expected_relations(word: str) -> set[tuple[str, str]]:
    pairs = [(SHARED, f"{word} Gateway"), (f"{word} Gateway", f"{word} Ledger")]
    return {(min(a, b), max(a, b)) for a, b in pairs}  # stored as src_id < tgt_id


class Proc:
    """A shield-mcp subprocess in its own process group (its docling child dies with it)."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [SHIELD, *args], env=env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
        return int(self.proc.returncode)


def sql(database: str, query: str) -> list[dict[str, Any]]:
    """The rows of a query, as dicts; in it, :'ws' is the collection's workspace and
    :'shared' the shared entity (psql quotes them)."""
    wrapped = f"SELECT coalesce(json_agg(t), '[]'::json) FROM ({query}) t;"  # noqa: S608
    out = subprocess.run(
        [*PSQL, "-d", database, "-At", "-v", f"ws={COLLECTION}", "-v", f"shared={SHARED}"],
        input=wrapped, check=True, capture_output=True, text=True,
    )  # fmt: skip
    rows: list[dict[str, Any]] = json.loads(out.stdout)
    return rows


@pytest.fixture
def cluster_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A PostgreSQL database and a Redis queue name of this test's own, removed after it."""
    database = f"shield_lrag_{uuid.uuid4().hex[:10]}"
    queue = f"shield-test-{uuid.uuid4().hex[:10]}"
    subprocess.run([*PSQL, "-d", "postgres", "-c", f'CREATE DATABASE "{database}"'], check=True)
    docs = tmp_path / "docs"
    docs.mkdir()
    env = {
        "SHIELD_DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{database}",
        "SHIELD_QUEUE_URL": REDIS_URL,
        "SHIELD_QUEUE_NAME": queue,
        "SHIELD_LEASE_SECONDS": "10",  # above the longest event-loop stall (imports) here
        "SHIELD_RETRY_BACKOFF_SECONDS": "0.2",
        "SHIELD_SHUTDOWN_GRACE_SECONDS": "2",
        "SHIELD_INGEST_ROOTS": str(docs),
        "SHIELD_WORKER_CONCURRENCY": "3",
        "SHIELD_LIGHTRAG": "true",
        "SHIELD_LOG_LEVEL": "INFO",
    }
    try:
        yield env
    finally:
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        client.delete(queue, f"autoclaim:{queue}:workers:{queue}")
        client.close()
        subprocess.run(
            [*PSQL, "-d", "postgres", "-c", f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'],
            check=True,
        )


class LockWatch:
    """Polls pg_locks for a session waiting on an advisory lock: proof that two workers
    wanted the workspace's writer lock at the same moment."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.waits = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        query = "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        while not self._stop.is_set():
            if sql(self.database, query):
                self.waits += 1
            self._stop.wait(0.05)

    def __enter__(self) -> LockWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def wait_for(proc: Proc, text: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in proc.log():
        if proc.proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"no {text!r} from the worker:\n{proc.log()[-4000:]}")
        time.sleep(0.2)


def overlaps(a: dict[str, Any], b: dict[str, Any]) -> bool:
    start = max(datetime.fromisoformat(a["started_at"]), datetime.fromisoformat(b["started_at"]))
    end = min(datetime.fromisoformat(a["finished_at"]), datetime.fromisoformat(b["finished_at"]))
    return start < end


def test_two_workers_ingesting_one_collection_lose_no_graph_writes(
    tmp_path: Path, cluster_env: dict[str, str]
) -> None:
    database = cluster_env["SHIELD_DATABASE_URL"].rsplit("/", 1)[1]
    docs_dir = Path(cluster_env["SHIELD_INGEST_ROOTS"])
    paths = {}
    for word in WORDS:
        paths[word] = docs_dir / f"{word.lower()}.md"
        paths[word].write_text(document_text(word))
    procs: list[Proc | HttpProcess] = []
    http = httpx.Client(timeout=30.0)
    with ollama_standin() as llm:
        env = {
            **cluster_env,
            "SHIELD_LLM": "ollama",
            "SHIELD_OLLAMA_HOST": llm.url,
            "SHIELD_LLM_MODEL": "stand-in",
        }
        try:
            orch_dir = tmp_path / "orchestrator-data"
            orch_dir.mkdir()
            orchestrator = HttpProcess(
                lambda port: ["orchestrator", "--host", "127.0.0.1", "--port", str(port)],
                server_env(orch_dir, **env),
                tmp_path / "orchestrator.log",
            )
            procs.append(orchestrator)
            workers: list[Proc] = []
            for name in ("worker-a", "worker-b"):
                (tmp_path / name).mkdir()
                worker = Proc(
                    ["worker"], server_env(tmp_path / name, **env), tmp_path / f"{name}.log"
                )
                workers.append(worker)
                procs.append(worker)
            orchestrator.wait_ready(timeout=90)
            http.base_url = httpx.URL(orchestrator.url)
            for worker in workers:
                wait_for(worker, "worker ready")

            with LockWatch(database) as watch:
                ids = {}
                for word, path in paths.items():
                    body = {"kind": "document", "source": str(path), "collection": COLLECTION}
                    reply = http.post("/ingest-async", json=body)
                    assert reply.status_code == 202, reply.text
                    ids[word] = reply.json()["job_id"]
                jobs = {}
                deadline = time.monotonic() + HANG
                for word, job_id in ids.items():
                    while True:
                        job = http.get(f"/jobs/{job_id}", params={"wait": 5}).json()
                        if job["status"] in {"succeeded", "failed", "cancelled"}:
                            break
                        assert time.monotonic() < deadline, "\n".join(
                            [str(job), *(p.log()[-3000:] for p in procs)]
                        )
                    jobs[word] = job

            # The orchestrator has no workers and no shared vector store (no SHIELD_QDRANT_URL):
            # it cannot read LightRAG's vectors, so it refuses, saying what to set.
            reply = http.post("/lightrag/query", json={"query": SHARED, "collection": COLLECTION})
            assert reply.status_code == 503, reply.text
            assert "SHIELD_QDRANT_URL" in reply.text
        finally:
            http.close()
            codes = [proc.stop() for proc in procs]
        logs = "\n".join(p.log_path.read_text(errors="replace")[-3000:] for p in procs)
        # uvicorn ends by raising the SIGTERM it handled again (-15); the workers exit 0.
        assert codes[1:] == [0, 0], logs
        assert llm.calls > 0  # the graph really came from extraction

    # Every job succeeded and fed LightRAG (its graph, with the stand-in's entities).
    assert all(job["status"] == "succeeded" for job in jobs.values()), (jobs, logs)
    unindexed = {
        word: job["result"]["lightrag"]
        for word, job in jobs.items()
        if job["result"]["lightrag"]
        != {**job["result"]["lightrag"], "status": "indexed", "graph": True,
            "documents_indexed": 1, "failures": []}
    }  # fmt: skip
    assert not unindexed, json.dumps(unindexed, indent=1)

    # Both workers ran jobs (worker_id is host:pid:...), and at the same time.
    rows = sql(database, "SELECT id, worker_id FROM shield_jobs")
    pid_of = {row["id"]: int(row["worker_id"].split(":")[1]) for row in rows}
    by_worker = {w.proc.pid: [j for j in jobs.values() if pid_of[j["job_id"]] == w.proc.pid]
                 for w in workers}  # fmt: skip
    assert all(by_worker.values()), {pid: len(js) for pid, js in by_worker.items()}
    first, second = by_worker.values()
    assert any(overlaps(a, b) for a in first for b in second), "the workers never overlapped"
    print(f"jobs per worker: {[len(js) for js in by_worker.values()]}; "
          f"advisory lock waits seen: {watch.waits}")  # fmt: skip

    # LIGHTRAG_DOC_STATUS: every document exactly once, processed, with its chunks.
    statuses = sql(
        database,
        "SELECT id, status, file_path, chunks_list FROM lightrag_doc_status "
        "WHERE workspace = :'ws'",
    )
    assert len(statuses) == len(WORDS), statuses
    assert all(s["status"] == "processed" and s["chunks_list"] for s in statuses), statuses
    doc_ids = {s["id"] for s in statuses}
    assert len(doc_ids) == len(WORDS)
    # LIGHTRAG_DOC_FULL and LIGHTRAG_DOC_CHUNKS: no document or chunk stored twice.
    full = sql(database, "SELECT id FROM lightrag_doc_full WHERE workspace = :'ws'")
    assert sorted(r["id"] for r in full) == sorted(doc_ids)
    chunks = sql(
        database,
        "SELECT id, full_doc_id, content FROM lightrag_doc_chunks WHERE workspace = :'ws'",
    )
    assert len({c["content"] for c in chunks}) == len(chunks), chunks
    chunks_of: dict[str, set[str]] = {}
    for chunk in chunks:
        chunks_of.setdefault(chunk["full_doc_id"], set()).add(chunk["id"])
    assert set(chunks_of) == doc_ids
    for status in statuses:
        assert set(status["chunks_list"]) == chunks_of[status["id"]]
    chunk_word = {}
    for chunk in chunks:
        found = [w for w in WORDS if f"{w} Gateway" in chunk["content"]]
        assert len(found) == 1, chunk
        chunk_word[chunk["id"]] = found[0]

    # lightrag_graph_nodes: every document's own entities, and the shared one once.
    nodes = {
        row["id"]: row["properties"]
        for row in sql(
            database,
            "SELECT id, properties FROM lightrag_graph_nodes WHERE workspace = :'ws'",
        )
    }
    expected = {SHARED} | {f"{w} {kind}" for w in WORDS for kind in ("Gateway", "Ledger")}
    assert expected <= set(nodes), sorted(expected - set(nodes))
    # The node every worker merged into: its source_id references a chunk of EVERY
    # document. Without one writer at a time the last write would have dropped some.
    shared_sources = set(nodes[SHARED]["source_id"].split(SEP))
    assert {chunk_word[c] for c in shared_sources if c in chunk_word} == set(WORDS), (
        sorted(shared_sources),
        chunk_word,
    )
    for word in WORDS:
        own = {c for c, w in chunk_word.items() if w == word}
        for kind in ("Gateway", "Ledger"):
            assert set(nodes[f"{word} {kind}"]["source_id"].split(SEP)) == own
    # LIGHTRAG_ENTITY_CHUNKS: the same, in the per-entity chunk list LightRAG keeps.
    entity_chunks = sql(
        database,
        "SELECT chunk_ids FROM lightrag_entity_chunks WHERE workspace = :'ws' AND id = :'shared'",
    )
    assert len(entity_chunks) == 1, entity_chunks
    assert {chunk_word[c] for c in entity_chunks[0]["chunk_ids"]} == set(WORDS)

    # lightrag_graph_edges: every relation of every document, each stored once.
    edges = sql(
        database,
        "SELECT src_id, tgt_id FROM lightrag_graph_edges WHERE workspace = :'ws'",
    )
    pairs = [(e["src_id"], e["tgt_id"]) for e in edges]
    assert len(pairs) == len(set(pairs)), pairs
    wanted = set().union(*(expected_relations(w) for w in WORDS))
    assert wanted <= set(pairs), sorted(wanted - set(pairs))
    shared_edges = {p for p in pairs if SHARED in p}
    assert len(shared_edges) == len(WORDS), sorted(shared_edges)
