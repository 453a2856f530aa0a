"""What a running job hands the pipeline: the services it may use and how to report back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from knowledge.service import KnowledgeService
from orchestrator.errors import JobCancelled
from orchestrator.pipeline.config import PipelineConfig
from orchestrator.pipeline.stages import StageClock
from orchestrator.shared_locks import SharedLocks
from orchestrator_client.models import Progress

if TYPE_CHECKING:  # docling lives behind the converter; importing it here would be slow
    from orchestrator.graphrag.service import GraphService
    from orchestrator.pipeline.convert.converter import Converter

# The namespace of the locks that serialise jobs storing one source (pipeline/ingest.py).
SOURCE_LOCKS = "source"


@dataclass
class JobContext:
    job_id: str
    service: KnowledgeService
    config: PipelineConfig
    # Runs docling in a child process (shared by the worker's jobs): see convert/converter.py.
    converter: Converter
    # Persists progress; the caller throttles writes, so call it as often as is natural.
    report: Callable[[Progress], Awaitable[None]]
    # True once someone asked to cancel the job (DELETE /jobs/{id}).
    cancel_requested: Callable[[], Awaitable[bool]]
    # LightRAG, fed by ingestion jobs; None when it is off (SHIELD_LIGHTRAG=false).
    graph: GraphService | None = None
    # Serialise jobs storing the same source; across processes when given the PostgreSQL
    # job store's engine (the distributed layout).
    source_locks: SharedLocks = field(default_factory=lambda: SharedLocks(SOURCE_LOCKS))
    # Seconds per pipeline stage; the worker reads them after each attempt.
    stages: StageClock = field(default_factory=StageClock)

    async def checkpoint(self) -> None:
        """Call between units of work (pages, documents, batches): stops a cancelled job."""
        if await self.cancel_requested():
            raise JobCancelled(f"Job {self.job_id} was cancelled.")
