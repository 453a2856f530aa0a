"""The dashboards and recording rules against a real Prometheus scraping a real stack.

A `shield-mcp orchestrator`, one `shield-mcp worker` (its own /metrics on
SHIELD_METRICS_PORT) and `shield-mcp serve --transport http` pointed at the orchestrator run
on 127.0.0.1, on this machine's PostgreSQL and Redis. Debian's `prometheus` scrapes the three
every second and evaluates the repo's rule files every second while a real MCP client
(fastmcp over streamable HTTP) stores, finds, fails a call, crawls a local site and ingests a
DOCX. Then every dashboard query and every recording-rule expression must parse and return
data; the few that cannot have data in such a run are listed in ``NO_DATA`` with the reason,
and must indeed have none (a stale exception fails too).
"""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

from tests.deploy.monitoring import (
    PROMETHEUS_OWN,
    RULES,
    dashboard_queries,
    family_of_series,
    rule_queries,
)
from tests.deploy.tools import require_tool
from tests.documents import write_docx, write_random_bytes
from tests.orchestrator.cluster import cluster_environment
from tests.sites import serve_site
from tests.support import ADDRESS_IN_USE, HttpProcess, ServerProcess, free_port, server_env

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.timeout(600),  # three processes start, docling converts, a site is crawled
]

HANG = 240.0  # guards against a hang only; nothing here is timed

# Queries (by a part of their "where": dashboard file, panel title, rule) that cannot
# return data after a healthy run, and why. Each must really return nothing.
NO_DATA: dict[str, str] = {
    "'5xx by endpoint'": "no request failed with a 5xx in the run",
}

# The families each process must export (docs/MONITORING.md's catalogue, by process).
EXPORTS = {
    "shield-mcp-server": {
        "tool_calls_total",
        "tool_errors_total",
        "tool_duration_seconds_bucket",
        "mcp_server_operation_duration_seconds_bucket",
        "embedding_duration_seconds_bucket",
        "embedding_batch_size_bucket",
        "embedding_query_cache_total",
        "vector_store_operation_duration_seconds_bucket",
        "circuit_breaker_state",
        "dependency_up",
        "shield_build_info",
        "process_resident_memory_bytes",
    },
    "shield-orchestrator": {
        "api_requests_total",
        "api_duration_seconds_bucket",
        "worker_queue_size",
        "active_jobs",
        "oldest_queued_job_age_seconds",
        "dependency_up",
        "shield_build_info",
    },
    "shield-worker": {
        "jobs_total",
        "job_duration_seconds_bucket",
        "job_stage_duration_seconds_bucket",
        "job_failures_total",
        "lightrag_operations_total",
        "embedding_duration_seconds_bucket",
        "vector_store_operation_duration_seconds_bucket",
        "dependency_up",
        "shield_build_info",
    },
}


class Prometheus:
    """Debian's prometheus on a free port of 127.0.0.1, its data in the test's tmp dir."""

    ATTEMPTS = 5

    def __init__(self, binary: str, config: Path, workdir: Path) -> None:
        self.log_path = workdir / "prometheus.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        for _ in range(self.ATTEMPTS):
            start = self.log_path.stat().st_size
            self.port = free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            self.proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={workdir / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=self._log,
                stderr=subprocess.STDOUT,
            )
            if self._ready():
                return
            taken = ADDRESS_IN_USE in self.log_path.read_bytes()[start:].decode(errors="replace")
            if not taken:
                break
        self.stop()
        raise RuntimeError(f"prometheus did not start:\n{self.log()}")

    def _ready(self) -> bool:
        deadline = time.monotonic() + HANG
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        return False

    def api(self, path: str, **params: Any) -> Any:
        reply = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=30)
        body = reply.json()
        assert body["status"] == "success", f"{path} {params}: {body}"
        return body["data"]

    def query(self, expr: str) -> dict[str, Any]:
        """The raw answer: errors are returned, not raised (a query may fail to parse)."""
        reply = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=30)
        answer: dict[str, Any] = reply.json()
        return answer

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@dataclass
class Stack:
    server: ServerProcess
    orchestrator: HttpProcess
    worker: HttpProcess
    docs: Path

    def targets(self) -> dict[str, str]:
        """Prometheus job name (as in prometheus/prometheus.yml) -> host:port."""
        return {
            "shield-mcp-server": f"127.0.0.1:{self.server.port}",
            "shield-orchestrator": f"127.0.0.1:{self.orchestrator.port}",
            "shield-worker": f"127.0.0.1:{self.worker.port}",
        }

    def logs(self) -> str:
        return "\n".join(p.log()[-3000:] for p in (self.server, self.orchestrator, self.worker))


def worker_on_metrics_port(env: dict[str, str]) -> Callable[[int], list[str]]:
    """A worker's arguments for HttpProcess: the port it is given goes into the worker's
    environment (SHIELD_METRICS_PORT), since `shield-mcp worker` takes no --port. HttpProcess
    builds the arguments just before it starts the process with this same ``env``."""

    def command(port: int) -> list[str]:
        env["SHIELD_METRICS_PORT"] = str(port)
        return ["worker"]

    return command


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with cluster_environment(
        tmp_path,
        "shield_live",
        SHIELD_CRAWL_ALLOW_PRIVATE="true",  # the test site runs on 127.0.0.1
        SHIELD_PROBE_INTERVAL_SECONDS="1",  # dependency_up settles within the run
    ) as env:
        started: list[HttpProcess] = []
        try:
            orchestrator = HttpProcess(
                lambda port: ["orchestrator", "--host", "127.0.0.1", "--port", str(port)],
                server_env(tmp_path / "orchestrator-data", **env),
                tmp_path / "orchestrator.log",
            )
            started.append(orchestrator)
            orchestrator.wait_ready(timeout=HANG)
            worker_env = server_env(tmp_path / "worker-data", **env)
            worker = HttpProcess(
                worker_on_metrics_port(worker_env), worker_env, tmp_path / "worker.log"
            )
            started.append(worker)
            worker.wait_ready(timeout=HANG)
            server = ServerProcess(
                tmp_path / "server-data",
                tmp_path / "server.log",
                SHIELD_ORCHESTRATOR_URL=orchestrator.url,
                SHIELD_PROBE_INTERVAL_SECONDS="1",
            )
            started.append(server)
            server.wait_ready(timeout=HANG)
            yield Stack(server, orchestrator, worker, Path(env["SHIELD_INGEST_ROOTS"]))
        finally:
            for proc in reversed(started):
                proc.stop()


def every_second(rules: Path) -> Path:
    """The repo's rule files with no group interval of their own, so every group runs at
    the test's 1 s: the 30-day groups' 5 minutes would leave them unevaluated in the run."""
    rules.mkdir()
    for source in sorted(RULES.glob("*.yml")):
        content = yaml.safe_load(source.read_text())
        for group in content["groups"]:
            group.pop("interval", None)
        (rules / source.name).write_text(yaml.safe_dump(content, sort_keys=False))
    return rules


def prometheus_config(stack: Stack, path: Path) -> Path:
    rules = every_second(path.parent / "rules")
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules / "*.yml")],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [target]}]}
            for job, target in stack.targets().items()
        ],
    }
    path.write_text(yaml.safe_dump(config))
    return path


async def traffic(stack: Stack, site_url: str) -> dict[str, str]:
    """Real tool calls through a real MCP client; returns each job's final status."""
    docx = write_docx(stack.docs / "sourdough.docx")
    broken = write_random_bytes(stack.docs / "broken.docx")  # not a DOCX: a failed job
    transport = StreamableHttpTransport(f"{stack.server.url}/mcp")
    async with Client(transport, timeout=120) as client:
        stored = await client.call_tool(
            "qdrant_store", {"text": "Deploys happen on Tuesdays.", "metadata": {"team": "ops"}}
        )
        assert not stored.is_error, stored.content
        for _ in range(2):  # the second lookup is served by the query cache
            found = await client.call_tool("qdrant_find", {"query": "when do we deploy?"})
            assert found.structured_content is not None
            assert found.structured_content["results"], found.content
        bad = await client.call_tool("qdrant_find", {"query": ""}, raise_on_error=False)
        assert bad.is_error
        unknown = await client.call_tool(
            "get_job_status", {"job_id": str(uuid.uuid4())}, raise_on_error=False
        )
        assert unknown.is_error
        jobs = {
            "crawl": await client.call_tool("crawl_web", {"url": site_url, "max_pages": 4}),
            "docx": await client.call_tool("ingest_doc", {"source": str(docx)}),
            "broken": await client.call_tool("ingest_doc", {"source": str(broken)}),
        }
        final = {}
        for name, accepted in jobs.items():
            assert accepted.structured_content is not None, accepted.content
            job_id = accepted.structured_content["job_id"]
            deadline = time.monotonic() + HANG
            while True:
                status = await client.call_tool(
                    "get_job_status", {"job_id": job_id, "wait_seconds": 5}
                )
                assert status.structured_content is not None
                if status.structured_content["status"] in {"succeeded", "failed", "cancelled"}:
                    final[name] = status.structured_content["status"]
                    break
                assert time.monotonic() < deadline, f"job {name} hangs:\n{stack.logs()}"
    return final


def wait_for(check: Any, what: str, prometheus: Prometheus) -> None:
    deadline = time.monotonic() + HANG
    while not check():
        assert time.monotonic() < deadline, f"{what}:\n{prometheus.log()[-3000:]}"
        time.sleep(0.5)


def targets_up(prometheus: Prometheus) -> set[str]:
    """The jobs whose target was scraped successfully (none before the first scrapes)."""
    targets = prometheus.api("targets")["activeTargets"]
    return {t["labels"]["job"] for t in targets if t["health"] == "up"}


def scraped_and_evaluated_since(prometheus: Prometheus, moment: float) -> bool:
    """Every target scraped and every rule group evaluated after ``moment`` (epoch s)."""

    def epoch(stamp: str) -> float:
        # RFC 3339 with nanoseconds: Prometheus's own clock, compared with this machine's.
        stamp = re.sub(r"(\.\d{6})\d*", r"\1", stamp).replace("Z", "+00:00")
        from datetime import datetime

        return datetime.fromisoformat(stamp).timestamp()

    targets = prometheus.api("targets")["activeTargets"]
    groups = prometheus.api("rules")["groups"]
    return all(t["health"] == "up" and epoch(t["lastScrape"]) > moment for t in targets) and all(
        epoch(g["lastEvaluation"]) > moment for g in groups
    )


async def test_every_panel_and_recording_rule_returns_data_from_a_live_stack(
    stack: Stack, tmp_path: Path
) -> None:
    prometheus = Prometheus(
        require_tool("prometheus"), prometheus_config(stack, tmp_path / "prometheus.yml"), tmp_path
    )
    try:
        # Each target scraped once: the traffic after it is what rate() sees.
        wait_for(
            lambda: targets_up(prometheus) == set(stack.targets()), "a target is down", prometheus
        )
        with serve_site(pages=4, slow_delay=0.2) as site:
            jobs = await traffic(stack, site.url)
        assert jobs == {"crawl": "succeeded", "docx": "succeeded", "broken": "failed"}, jobs
        # Two rounds after the traffic: the last counters are scraped, then the rules that
        # read them are evaluated.
        for _ in range(2):
            wait_for(
                partial(scraped_and_evaluated_since, prometheus, time.time()),
                "no scrape or rule evaluation after the traffic",
                prometheus,
            )

        failed, empty, stale = [], [], []
        for q in dashboard_queries() + rule_queries("record"):
            answer = prometheus.query(q.expr)
            if answer.get("status") != "success":
                failed.append(f"{q.where}: {answer.get('error')}")
                continue
            has_data = bool(answer["data"]["result"])
            excused = next((why for part, why in NO_DATA.items() if part in q.where), "")
            if excused and has_data:
                stale.append(f"{q.where} has data now ({excused}): remove it from NO_DATA")
            elif not excused and not has_data:
                empty.append(f"{q.where}: {q.expr}")
        for q in rule_queries("alert"):  # conditions: they must parse, not hold
            answer = prometheus.query(q.expr)
            if answer.get("status") != "success":
                failed.append(f"{q.where}: {answer.get('error')}")
        assert failed == [], failed
        assert empty == [], "\n".join(empty)
        assert stale == [], stale

        # Every process is scraped and exports its part; nothing it serves is missing from
        # the registry the coverage test reads.
        known = set(family_of_series()) | PROMETHEUS_OWN
        for job, expected in EXPORTS.items():
            names = set(prometheus.api("label/__name__/values", **{"match[]": f'{{job="{job}"}}'}))
            assert expected - names == set(), f"{job} lacks {expected - names}"
            assert names - known == set(), f"{job} exports families no test knows of"
    finally:
        prometheus.stop()
