"""ingest_doc jobs end to end: real files, real docling, the real embedder and embedded store."""

from __future__ import annotations

import base64
import functools
import shutil
import threading
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from knowledge.errors import InvalidInput
from knowledge.service import KnowledgeService
from orchestrator.errors import ConversionFailed, JobCancelled
from orchestrator.pipeline.config import PipelineConfig
from orchestrator.pipeline.context import JobContext
from orchestrator.pipeline.dispatch import run_job, validate_request
from orchestrator_client.models import DocType, DocumentRequest
from tests.documents import PHRASES, write_docx_as, write_md, write_random_bytes

MakeContext = Callable[..., tuple[JobContext, Any]]


def _request(**fields: object) -> DocumentRequest:
    return DocumentRequest.model_validate(fields)


async def _top_hit(service: KnowledgeService, query: str, collection: str = "docs") -> Any:
    found = await service.find(query, limit=1, collection=collection)
    return found.results[0]


@pytest.mark.slow  # seven documents through docling and the model, one after the other
async def test_every_format_is_searchable_after_ingest(
    make_context: MakeContext,
    service: KnowledgeService,
    samples: dict[str, Path],
    root: Path,
) -> None:
    for kind, path in samples.items():
        shutil.copy(path, root / path.name)
        ctx, _ = make_context(job_id=f"job-{kind}")
        result = await run_job(_request(source=str(root / path.name)), ctx)
        assert result.documents == 1
        assert result.chunks_stored >= 1
    for kind, phrase in PHRASES.items():
        hit = await _top_hit(service, phrase)
        assert phrase in hit.text, kind
        assert hit.metadata["source"] == str((root / f"sample.{kind}").resolve())
        assert hit.metadata["job_id"] == f"job-{kind}"


async def test_chunk_metadata_carries_provenance_and_the_request_metadata(
    make_context: MakeContext, service: KnowledgeService, samples: dict[str, Path], root: Path
) -> None:
    path = shutil.copy(samples["docx"], root / "kitchen.docx")
    ctx, recorder = make_context(job_id="job-meta")
    request = _request(source=str(path), collection="kitchen", metadata={"team": "bakery"})
    result = await run_job(request, ctx)
    assert result.collection == "kitchen"
    assert result.converter == "docling:docx"
    hit = await _top_hit(service, "how fast does the sourdough starter rise", "kitchen")
    meta = hit.metadata
    assert meta["team"] == "bakery"
    assert meta["title"] == "Kitchen Handbook"
    assert meta["headings"] == ["Kitchen Handbook", "Fermentation Notes"]
    assert meta["page"] is None
    assert 0 <= meta["chunk_index"] < meta["chunk_count"]
    assert meta["ingested_at"]
    assert len(meta["content_hash"]) == 64
    assert recorder.stages() == ["converting", "embedding"]
    last = recorder.progress[-1]
    assert (last.done, last.total) == (result.chunks_stored, result.chunks_stored)


async def test_reingesting_an_unchanged_document_skips_every_chunk(
    make_context: MakeContext, service: KnowledgeService, samples: dict[str, Path], root: Path
) -> None:
    path = shutil.copy(samples["pdf"], root / "report.pdf")
    ctx, _ = make_context(job_id="first")
    first = await run_job(_request(source=str(path)), ctx)
    assert first.chunks_stored >= 2
    assert first.converter == "docling:native-pdf"
    count = await service.store.count("docs")
    ctx, _ = make_context(job_id="second")
    again = await run_job(_request(source=str(path)), ctx)
    assert (again.chunks_stored, again.chunks_skipped_unchanged) == (0, first.chunks_stored)
    assert await service.store.count("docs") == count
    hit = await _top_hit(service, PHRASES["pdf"])
    assert hit.metadata["job_id"] == "first"  # untouched, not rewritten
    assert hit.metadata["page"] >= 2


async def test_a_changed_document_replaces_its_old_passages(
    make_context: MakeContext, service: KnowledgeService, root: Path
) -> None:
    path = root / "notes.md"
    path.write_text("# Notes\n\nThe ferry to the island leaves at nine every morning.\n")
    ctx, _ = make_context()
    await run_job(_request(source=str(path)), ctx)
    path.write_text("# Notes\n\nThe ferry to the island now leaves at ten, on weekdays only.\n")
    ctx, _ = make_context()
    result = await run_job(_request(source=str(path)), ctx)
    assert result.chunks_stored == 1
    found = await service.find("when does the ferry leave", limit=10)
    texts = [h.text for h in found.results]
    assert len(texts) == 1
    assert "ten, on weekdays" in texts[0]


async def test_an_uploaded_document_is_ingested(
    make_context: MakeContext, service: KnowledgeService, samples: dict[str, Path]
) -> None:
    encoded = base64.b64encode(samples["pptx"].read_bytes()).decode()
    request = _request(content_base64=encoded, filename="briefing.pptx", doc_type="pptx")
    ctx, _ = make_context()
    await validate_request(request, ctx.config)
    result = await run_job(request, ctx)
    assert result.converter == "docling:pptx"
    hit = await _top_hit(service, "copper prices after the mine strike")
    assert PHRASES["pptx"] in hit.text
    assert hit.metadata["source"] == "upload:briefing.pptx"


def _upload(text: str, filename: str = "notes.txt") -> DocumentRequest:
    encoded = base64.b64encode(text.encode()).decode()
    return _request(content_base64=encoded, filename=filename)


async def test_two_different_uploads_with_one_name_are_both_kept(
    make_context: MakeContext, service: KnowledgeService
) -> None:
    # Two people upload their own notes.txt: a name is not an identity, nothing is replaced.
    first = _upload("Minutes: the bakery orders rye flour from the northern mill.")
    second = _upload("Minutes: the harbour crane is serviced every second Tuesday.")
    for job_id, request in (("first", first), ("second", second)):
        ctx, _ = make_context(job_id=job_id)
        result = await run_job(request, ctx)
        assert (result.chunks_stored, result.chunks_removed_stale) == (1, 0)
    assert await service.store.source_ids("docs", "upload:notes.txt") != set()
    assert "rye flour" in (await _top_hit(service, "where does the bakery get rye flour")).text
    assert "crane" in (await _top_hit(service, "when is the harbour crane serviced")).text
    assert await service.store.count("docs") == 2


async def test_the_same_upload_again_stores_nothing_new(
    make_context: MakeContext, service: KnowledgeService
) -> None:
    request = _upload("Minutes: the ferry timetable changes in October.")
    ctx, _ = make_context(job_id="first")
    first = await run_job(request, ctx)
    ctx, _ = make_context(job_id="again")
    again = await run_job(request, ctx)
    assert (again.chunks_stored, again.chunks_skipped_unchanged) == (0, first.chunks_stored)
    assert again.chunks_removed_stale == 0
    assert await service.store.count("docs") == first.chunks_stored


@pytest.fixture
def file_server(samples: dict[str, Path]) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 serving the sample files."""
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(samples["docx"].parent))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def test_a_document_at_a_url_is_downloaded_and_ingested(
    make_context: MakeContext, service: KnowledgeService, file_server: str
) -> None:
    url = f"{file_server}/sample.xlsx"
    request = _request(source=url)
    refused, _ = make_context()
    with pytest.raises(InvalidInput):  # loopback: refused unless allowed
        await validate_request(request, refused.config)
    ctx, recorder = make_context(crawl_allow_private=True)
    await validate_request(request, ctx.config)
    result = await run_job(request, ctx)
    assert result.converter == "docling:xlsx"
    assert recorder.stages() == ["fetching", "converting", "embedding"]
    hit = await _top_hit(service, "geysers on a moon of Saturn")
    assert PHRASES["xlsx"] in hit.text
    assert hit.metadata["source"] == url


async def test_bad_files_fail_their_job_with_a_clear_error(
    make_context: MakeContext, service: KnowledgeService, root: Path
) -> None:
    ctx, _ = make_context()
    mislabelled = write_docx_as(root / "report.pdf")
    with pytest.raises(InvalidInput, match=r"'report\.pdf' is named like a PDF file but is a DOCX"):
        await run_job(_request(source=str(mislabelled)), ctx)
    noise = write_random_bytes(root / "broken.docx")
    with pytest.raises(InvalidInput, match=r"'broken\.docx' is not a valid DOCX file"):
        await run_job(_request(source=str(noise)), ctx)
    (root / "blank.md").write_text("<!-- nothing but a comment -->\n")
    with pytest.raises(ConversionFailed, match=r"'blank\.md' converted to no text"):
        await run_job(_request(source=str(root / "blank.md")), ctx)
    upload = _request(
        content_base64=base64.b64encode(b"%PDF-1.7 not really").decode(),
        filename="x.pdf",
        doc_type=DocType.pdf,
    )
    with pytest.raises(ConversionFailed, match=r"'x\.pdf'"):
        await run_job(upload, ctx)
    assert not await service.store.collection_exists("docs")  # nothing half-stored


async def test_a_cancelled_job_stops_before_storing(
    make_context: MakeContext, service: KnowledgeService, samples: dict[str, Path], root: Path
) -> None:
    path = shutil.copy(samples["md"], root / "guide.md")
    ctx, recorder = make_context()
    recorder.cancel = True
    with pytest.raises(JobCancelled):
        await run_job(_request(source=str(path)), ctx)
    assert not await service.store.collection_exists("docs")


async def test_request_checks_refuse_reserved_metadata_and_bad_collections(
    config: PipelineConfig, root: Path
) -> None:
    path = write_md(root / "guide.md")
    with pytest.raises(InvalidInput, match=r"metadata keys source are set by the pipeline"):
        await validate_request(_request(source=str(path), metadata={"source": "x"}), config)
    with pytest.raises(InvalidInput, match=r"Collection name"):
        await validate_request(_request(source=str(path), collection="../etc"), config)
    with pytest.raises(InvalidInput, match=r"lowercase"):
        await validate_request(_request(source=str(path), collection="Notes"), config)
    with pytest.raises(InvalidInput, match=r"plain JSON"):
        await validate_request(_request(source=str(path), metadata={"score": float("nan")}), config)
