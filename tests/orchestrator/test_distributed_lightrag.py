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
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.ollama_standin import ollama_standin
from tests.orchestrator.cluster import PSQL, Proc, cluster_environment
from tests.support import HttpProcess, server_env

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.slow,
    # Three processes start (imports, docling children), then ten documents are converted,
    # embedded and indexed by LightRAG one workspace writer at a time.
    pytest.mark.timeout(420),
]

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


def sql(database: str, query: str, **values: object) -> list[dict[str, Any]]:
    """The rows of a query, as dicts. In it :'ws' is the collection's workspace, :'shared'
    the shared entity, :'name' any other of ``values`` (psql quotes them)."""
    wrapped = f"SELECT coalesce(json_agg(t), '[]'::json) FROM ({query}) t;"  # noqa: S608
    values = {"ws": COLLECTION, "shared": SHARED, **values}
    variables = [arg for k, v in values.items() for arg in ("-v", f"{k}={v}")]
    out = subprocess.run(
        [*PSQL, "-d", database, "-At", *variables],
        input=wrapped, check=True, capture_output=True, text=True,
    )  # fmt: skip
    rows: list[dict[str, Any]] = json.loads(out.stdout)
    return rows


@pytest.fixture
def cluster_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    with cluster_environment(
        tmp_path,
        "shield_lrag",
        SHIELD_LEASE_SECONDS="10",  # above the longest event-loop stall (imports) here
        SHIELD_WORKER_CONCURRENCY="3",
        SHIELD_LIGHTRAG="true",
    ) as env:
        yield env


class CreateTogether:
    """Holds back table creation in the database (a SHARE lock on pg_type) until two
    sessions wait for a lock, or HOLD s after the first does. The workers' first jobs then
    open LightRAG's storage, which creates its tables, at the same moment, as happens by
    chance when a cluster starts on a new database, not whenever their conversions end."""

    HOLD = 10.0

    def __init__(self, database: str) -> None:
        self.database = database
        self.psql = subprocess.Popen(
            [*PSQL, "-d", database], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
        )
        self._send("BEGIN; LOCK TABLE pg_catalog.pg_type IN SHARE MODE; SELECT 1;")
        held = "SELECT 1 FROM pg_locks WHERE relation = 'pg_type'::regclass AND granted"
        while not sql(database, held + " AND mode = 'ShareLock'"):
            time.sleep(0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._release_when_two_wait, daemon=True)
        self._thread.start()

    def _send(self, line: str) -> None:
        assert self.psql.stdin is not None
        self.psql.stdin.write(line + "\n")
        self.psql.stdin.flush()

    def _release_when_two_wait(self) -> None:
        waiting = (
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        deadline = time.monotonic() + 60.0
        while len(found := sql(self.database, waiting)) < 2 and time.monotonic() < deadline:
            if found:
                deadline = min(deadline, time.monotonic() + self.HOLD)
            if self._stop.wait(0.05):
                break
        self._send("COMMIT;")

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        assert self.psql.stdin is not None
        self.psql.stdin.close()
        self.psql.wait(timeout=30)


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
    paths = {word: docs_dir / f"{word.lower()}.md" for word in WORDS}
    for word, path in paths.items():
        path.write_text(document_text(word))
    procs: list[Proc | HttpProcess] = []
    http = httpx.Client(timeout=30.0)
    together: CreateTogether | None = None
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
            orchestrator.wait_ready(timeout=90)
            http.base_url = httpx.URL(orchestrator.url)
            # Started one after the other: what runs at the same time here is ingestion.
            for name in ("worker-a", "worker-b"):
                (tmp_path / name).mkdir()
                log_path = tmp_path / f"{name}.log"
                worker = Proc(["worker"], server_env(tmp_path / name, **env), log_path)
                workers.append(worker)
                procs.append(worker)
                wait_for(worker, "worker ready")

            together = CreateTogether(database)
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
            if together is not None:
                together.close()
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
    # And their LightRAG writes collided: a worker waited for the other's writer lock.
    # A worker that found the workspace's writer lock taken says so in its log.
    waited = "LightRAG workspace 'shared': another process is writing it; waiting"
    assert any(waited in w.log_path.read_text(errors="replace") for w in workers), (
        "no worker ever waited for the workspace's advisory lock"
    )

    # LIGHTRAG_DOC_STATUS: every document exactly once, processed, with its chunks.
    statuses = sql(
        database,
        "SELECT id, status, chunks_list FROM lightrag_doc_status WHERE workspace = :'ws'",
    )
    assert len(statuses) == len(WORDS), statuses  # (workspace, id) is its primary key
    assert all(s["status"] == "processed" and s["chunks_list"] for s in statuses), statuses
    doc_ids = {s["id"] for s in statuses}
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
    # Each chunk's document, by the word it names (one each).
    chunk_word = {c["id"]: w for c in chunks for w in WORDS if f"{w} Gateway" in c["content"]}
    assert len(chunk_word) == len(chunks) and set(chunk_word.values()) == set(WORDS)

    # lightrag_graph_nodes: every document's own entities, and the shared one.
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
    covered = {chunk_word[c] for c in shared_sources if c in chunk_word}
    assert covered == set(WORDS), f"lost: {sorted(set(WORDS) - covered)}"
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
    edges = sql(database, "SELECT src_id, tgt_id FROM lightrag_graph_edges WHERE workspace = :'ws'")
    pairs = [(e["src_id"], e["tgt_id"]) for e in edges]
    assert len(pairs) == len(set(pairs)), pairs
    wanted = set().union(*(expected_relations(w) for w in WORDS))
    assert wanted <= set(pairs), sorted(wanted - set(pairs))
    shared_edges = {p for p in pairs if SHARED in p}
    assert len(shared_edges) == len(WORDS), sorted(shared_edges)
