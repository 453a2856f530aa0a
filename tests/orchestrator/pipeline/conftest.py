"""Fixtures of the pipeline tests: real files, a real store, and the session's docling child
(the ``converter`` fixture of tests/conftest.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

import pytest

from knowledge.embeddings.local import LocalEmbedder
from knowledge.service import KnowledgeService
from knowledge.vectorstore.edge import EdgeVectorStore
from orchestrator.pipeline.config import PipelineConfig
from orchestrator.pipeline.context import JobContext
from orchestrator.pipeline.convert.converter import Converter
from orchestrator_client.models import Progress
from tests.documents import write_all
from tests.knowledge.vector_fixtures import store_root

__all__ = ["store_root"]


@pytest.fixture(scope="session")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One real file per format (see tests/documents.py), written once."""
    return write_all(tmp_path_factory.mktemp("samples"))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "ingest-root"
    path.mkdir()
    return path


@pytest.fixture
def config(root: Path, store_root: Path) -> PipelineConfig:
    return PipelineConfig(
        ingest_roots=(root,),
        max_document_bytes=2_000_000,
        max_upload_bytes=1_000_000,
        crawl4ai_dir=store_root / "crawl4ai",
    )


@pytest.fixture
async def service(
    local_embedder: LocalEmbedder, store_root: Path
) -> AsyncIterator[KnowledgeService]:
    svc = KnowledgeService(local_embedder, EdgeVectorStore(store_root), default_collection="docs")
    yield svc
    # The session's embedder outlives this test: close only the store.
    await svc.store.close()


class Recorder:
    """What a job reported, and a switch to request its cancellation."""

    def __init__(self) -> None:
        self.progress: list[Progress] = []
        self.cancel = False

    async def report(self, progress: Progress) -> None:
        self.progress.append(progress)

    async def cancel_requested(self) -> bool:
        return self.cancel

    def stages(self) -> list[str]:
        return list(dict.fromkeys(p.stage for p in self.progress))


MakeContext = Callable[..., tuple[JobContext, Recorder]]


@pytest.fixture
def make_context(
    service: KnowledgeService, config: PipelineConfig, converter: Converter
) -> MakeContext:
    def make(job_id: str = "job-1", **overrides: object) -> tuple[JobContext, Recorder]:
        recorder = Recorder()
        ctx = JobContext(
            job_id=job_id,
            service=service,
            config=replace(config, **overrides),  # type: ignore[arg-type]
            converter=converter,
            report=recorder.report,
            cancel_requested=recorder.cancel_requested,
        )
        return ctx, recorder

    return make
