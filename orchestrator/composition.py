"""The orchestrator's composition root: where its settings become objects.

``compose_orchestrator`` serves ``shield-mcp orchestrator`` and ``shield-mcp worker`` and
the MCP server's embedded orchestrator alike; everything below it receives values
(``PipelineConfig``, ``JobLimits``, URLs), never the settings.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from fastapi import FastAPI

from knowledge.health import embedder_probe, probe_policy
from knowledge.service import KnowledgeService
from knowledge.wiring import KnowledgeHandle, knowledge_handle, make_breaker
from orchestrator.graphrag.config import GraphConfig
from orchestrator.graphrag.service import GraphService
from orchestrator.graphrag.setup import graph_config, query_unavailable
from orchestrator.http.app import build_app
from orchestrator.http.openapi import ServerBounds
from orchestrator.jobs.execution import Runner
from orchestrator.jobs.limits import JobLimits
from orchestrator.jobs.queue import JobQueue
from orchestrator.jobs.service import Changes, JobService
from orchestrator.jobs.store import JobStore
from orchestrator.jobs.worker import Worker
from orchestrator.pipeline.config import PipelineConfig
from orchestrator.pipeline.convert.converter import Converter
from orchestrator.pipeline.convert.limits import ConvertLimits
from orchestrator.pipeline.crawl.crawler import crawl4ai_environment
from orchestrator.pipeline.dispatch import validate_request
from orchestrator.pipeline.ingest import PIPELINE_KEYS
from orchestrator.runtime import OrchestratorRuntime, Recovery
from orchestrator.settings import OrchestratorSettings, upload_request_bytes
from shield_common import priority
from shield_common.probes import DependencyProbe, ProbePolicy


def pipeline_config(settings: OrchestratorSettings) -> PipelineConfig:
    return PipelineConfig(
        ingest_roots=tuple(settings.ingest_roots),
        max_document_bytes=settings.max_document_bytes,
        max_upload_bytes=settings.max_upload_bytes,
        fetch_timeout=settings.fetch_timeout,
        crawl_allow_private=settings.crawl_allow_private,
        crawl_mode=settings.crawl_mode,
        crawl_browser_cdp_url=settings.crawl_browser_cdp_url,
        crawl_browser_path=settings.crawl_browser_path,
        crawl_max_pages=settings.crawl_max_pages,
        crawl_page_timeout=settings.crawl_page_timeout,
        crawl4ai_dir=settings.data_dir / "crawl4ai",
        embedded_store=settings.qdrant_url is None,
        lightrag=settings.lightrag,
    )


def job_limits(settings: OrchestratorSettings) -> JobLimits:
    return JobLimits(
        concurrency=settings.worker_concurrency,
        lease_seconds=settings.lease_seconds,
        job_timeout=settings.job_timeout,
        max_attempts=settings.max_attempts,
        retry_backoff_seconds=settings.retry_backoff_seconds,
        shutdown_grace_seconds=settings.shutdown_grace_seconds,
    )


@dataclass
class Orchestrator:
    runtime: OrchestratorRuntime
    app: FastAPI  # the HTTP API over runtime.jobs; the runtime's owner starts and stops it


def compose_orchestrator(
    settings: OrchestratorSettings,
    *,
    service: KnowledgeService | None = None,
    run_workers: bool | None = None,
    queue_name: str | None = None,
    runner: Runner | None = None,
    converter: Converter | None = None,
) -> Orchestrator:
    """Every part of an orchestrator process, from its settings.

    ``service``: a knowledge service owned by the caller (the MCP server hosting this
    orchestrator), else one is opened at start. ``run_workers``: default, only with the
    in-process queue (with Redis, `shield-mcp worker` processes run the jobs). ``runner``
    and ``converter`` replace the pipeline and the docling child (tests).
    """
    config = pipeline_config(settings)
    limits = job_limits(settings)
    priority.configure(settings.background_nice)
    graph = graph_config(settings)  # refuses a LightRAG setup it would get wrong
    # Crawl4AI reads its directory once, when first imported: this process's data dir.
    os.environ.update(crawl4ai_environment(config.crawl4ai_dir))
    store = JobStore(settings.job_database_url)
    queue = JobQueue(
        settings.queue_url,
        queue_name=queue_name or settings.queue_name,
        lease_seconds=settings.lease_seconds,
    )
    changes = Changes()
    store.on_change = changes.notify
    jobs = JobService(store, queue, partial(validate_request, config=config), changes=changes)
    knowledge = (
        KnowledgeHandle.borrowed(service) if service is not None else knowledge_handle(settings)
    )

    def make_worker(opened: KnowledgeHandle, graph_service: GraphService | None) -> Worker:
        assert opened.service is not None  # opened by the runtime before it asks
        return Worker(
            store,
            queue,
            opened.service,
            converter
            or Converter(
                timeout=settings.convert_timeout,
                max_tokens=settings.chunk_max_tokens,
                nice=settings.background_nice,
                limits=ConvertLimits(
                    memory_mb=settings.convert_max_memory_mb,
                    max_pages=settings.convert_max_pages,
                ),
            ),
            limits=limits,
            config=config,
            runner=runner,
            own_converter=converter is None,
            graph=graph_service,
        )

    workers = settings.queue_url is None if run_workers is None else run_workers
    unavailable = query_unavailable(settings, workers)
    make_graph = _graph_maker(graph, settings) if graph and unavailable is None else None
    runtime = OrchestratorRuntime(
        store=store,
        queue=queue,
        jobs=jobs,
        recovery=Recovery(limits.lease_seconds, limits.max_attempts),
        database=settings.database_url or store.url,
        knowledge=knowledge if workers or make_graph else None,
        make_worker=make_worker if workers else None,
        make_graph=make_graph,
        graph_unavailable=unavailable,
        probe_policy=probe_policy(settings),
        embedder_probe=partial(_embedder_probe, settings),
    )
    token = settings.orchestrator_token
    max_body_bytes = upload_request_bytes(settings.max_upload_bytes)
    app = build_app(
        jobs,
        runtime.readiness,
        runtime.graph_service,
        max_wait_seconds=settings.max_wait_seconds,
        max_body_bytes=max_body_bytes,
        token=token.get_secret_value() if token is not None else None,
        bounds=ServerBounds(
            crawl_max_pages=settings.crawl_max_pages,
            max_upload_bytes=settings.max_upload_bytes,
            max_body_bytes=max_body_bytes,
            lowercase_collections=config.embedded_store,
            reserved_metadata_keys=PIPELINE_KEYS,
        ),
    )
    return Orchestrator(runtime, app)


def _embedder_probe(
    settings: OrchestratorSettings, policy: ProbePolicy, required: bool
) -> DependencyProbe:
    return embedder_probe(settings, policy, required=required)


def _graph_maker(
    config: GraphConfig, settings: OrchestratorSettings
) -> Callable[[KnowledgeService], GraphService]:
    def make(service: KnowledgeService) -> GraphService:
        return GraphService(config, service, llm_breaker=make_breaker(settings, "llm"))

    return make
