"""Real docling in its child process: every format, the token limit, bad files, timeouts."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from orchestrator.errors import ConversionFailed, StageTimeout
from orchestrator.pipeline.convert.chunking import tokenizer_path
from orchestrator.pipeline.convert.converter import Converter
from orchestrator.pipeline.document.filetypes import detect
from orchestrator_client.models import DocType
from tests.documents import (
    HEADINGS,
    PHRASES,
    write_blank_pdf,
    write_long_pdf,
    write_pdf,
    write_truncated_pdf,
)

FORMATS = list(PHRASES)


@pytest.mark.parametrize("kind", FORMATS)
async def test_each_format_converts_with_its_text(
    converter: Converter, samples: dict[str, Path], kind: str
) -> None:
    path = samples[kind]
    found = detect(path.read_bytes(), path.name)
    assert found.doc_type == DocType(kind)
    converted = await converter.convert(found.data, path.name, found.doc_type)
    joined = "\n".join(c.text for c in converted.chunks)
    assert PHRASES[kind] in joined
    expected = {
        "pdf": "docling:native-pdf",  # no layout weights on this machine (DESIGN.md)
        "txt": "docling:txt-as-md",
    }.get(kind, f"docling:{kind}")
    assert converted.converter == expected


@pytest.mark.parametrize("kind", sorted(HEADINGS))
async def test_section_headings_come_with_the_chunk_and_its_text(
    converter: Converter, samples: dict[str, Path], kind: str
) -> None:
    path = samples[kind]
    converted = await converter.convert(path.read_bytes(), path.name, DocType(kind))
    [chunk] = [c for c in converted.chunks if PHRASES[kind] in c.text]
    assert chunk.headings[-1] == HEADINGS[kind]
    assert len(chunk.headings) == 2  # the document's top heading, then the section
    # The embedded text carries the section path, so a search for the topic finds it.
    assert chunk.text.startswith("\n".join(chunk.headings))
    assert converted.title is not None


async def test_pdf_chunks_say_their_page(converter: Converter, tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "report.pdf", pages=6)
    converted = await converter.convert(path.read_bytes(), path.name, DocType.pdf)
    # Each page's text is a chunk of its own: chunks never span a page break.
    assert sorted(c.page or 0 for c in converted.chunks) == [1, 2, 3, 4, 5, 6]
    for chunk in converted.chunks:
        assert f"Page {chunk.page} of the annual report." in chunk.text
    first_mention = min(c.page or 0 for c in converted.chunks if PHRASES["pdf"] in c.text)
    assert first_mention == 2


async def test_every_chunk_fits_the_embedding_model(converter: Converter, tmp_path: Path) -> None:
    path = tmp_path / "long.md"
    sections = [
        f"## Section {i}\n\n" + " ".join(f"word{i}x{j} sentence filler." for j in range(300))
        for i in range(3)
    ]
    path.write_text("# Long document\n\n" + "\n\n".join(sections))
    converted = await converter.convert(path.read_bytes(), path.name, DocType.md)
    # Counted the way the embedder counts: its tokenizer file, [CLS] and [SEP] included.
    tokenizer = Tokenizer.from_file(str(tokenizer_path()))
    tokenizer.no_truncation()  # the file itself truncates at 128
    counts = [len(tokenizer.encode(c.text).ids) for c in converted.chunks]
    assert len(counts) > 10  # it really had to split
    assert max(counts) <= 256
    # Nothing was dropped on the way: the last word of the last section is there.
    assert any("word2x299" in c.text for c in converted.chunks)


async def test_markdown_of_a_crawled_page_is_chunked(converter: Converter) -> None:
    chunks = await converter.chunk_markdown(
        "# Harbour\n\n## Tides\n\nThe spring tide floods the harbour twice a month.\n",
        "https://example.org/harbour",
    )
    assert [c.headings for c in chunks] == [["Harbour", "Tides"]]
    assert "spring tide" in chunks[0].text
    assert await converter.chunk_markdown("  \n", "empty") == []


async def test_a_truncated_pdf_fails_with_the_file_named(
    converter: Converter, tmp_path: Path
) -> None:
    path = write_truncated_pdf(tmp_path / "cut.pdf")
    found = detect(path.read_bytes(), path.name)  # the header is intact: it claims PDF
    with pytest.raises(ConversionFailed) as err:
        await converter.convert(found.data, path.name, found.doc_type)
    assert "'cut.pdf'" in str(err.value)
    assert "damaged" in str(err.value) or "corrupt" in str(err.value)


async def test_a_pdf_without_text_fails_saying_so(converter: Converter, tmp_path: Path) -> None:
    path = write_blank_pdf(tmp_path / "scan.pdf")
    with pytest.raises(ConversionFailed, match=r"'scan\.pdf' converted to no text.*OCR"):
        await converter.convert(path.read_bytes(), path.name, DocType.pdf)


# The tests on the long PDF are slow: docling needs seconds for it, and each one that stops
# or kills the child pays for the next child's start.
@pytest.fixture(scope="module")
def long_pdf(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A PDF docling needs many seconds for (dense text on 60 pages)."""
    return write_long_pdf(tmp_path_factory.mktemp("long") / "long.pdf", pages=60).read_bytes()


@pytest.mark.slow
async def test_a_timeout_stops_the_conversion_and_the_next_one_works(
    converter: Converter, long_pdf: bytes
) -> None:
    await converter.warm_up()
    first = converter.pid
    assert first is not None
    starts = converter.starts
    converter.timeout = 0.2
    try:
        with pytest.raises(StageTimeout, match=r"'big\.pdf' took longer than 0\.2 s"):
            await converter.convert(long_pdf, "big.pdf", DocType.pdf)
    finally:
        converter.timeout = 120.0
    # The child that was converting is gone, not left running in the background.
    with pytest.raises(ProcessLookupError):
        os.kill(first, 0)
    chunks = await converter.chunk_markdown("# After\n\nThe converter still works.", "x")
    assert "still works" in chunks[0].text
    assert converter.pid != first
    assert converter.starts == starts + 1


@pytest.mark.slow
async def test_a_cancelled_caller_stops_its_conversion_for_the_next_one(
    converter: Converter, long_pdf: bytes
) -> None:
    """A job cancelled (or timed out) mid-conversion must not leave the converter busy.

    Otherwise every other job of the worker would queue behind a document nobody waits
    for, up to SHIELD_CONVERT_TIMEOUT.
    """
    converter.timeout = 600.0  # only the cancellation may end the long conversion
    try:
        await converter.warm_up()
        first = converter.pid
        assert first is not None
        starts = converter.starts
        job = asyncio.create_task(converter.convert(long_pdf, "big.pdf", DocType.pdf))
        # Wait (no clock) until the request reached the child; the converter's own thread
        # sets the flag, so there is no event of this loop to await.
        while not converter.busy:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job
        chunks = await converter.chunk_markdown("# After\n\nThe converter still works.", "x")
    finally:
        converter.timeout = 120.0
    assert "still works" in chunks[0].text
    assert converter.starts == starts + 1
    assert converter.pid != first
    with pytest.raises(ProcessLookupError):
        os.kill(first, 0)


@pytest.mark.slow
async def test_a_request_cancelled_while_queued_never_runs(
    converter: Converter, long_pdf: bytes
) -> None:
    await converter.warm_up()
    starts = converter.starts
    # Long enough (about a second) that the PDF is still queued when its caller gives up.
    text = "\n\n".join(f"## Part {i}\n\nFirst in line, part {i}." for i in range(300))
    ahead = asyncio.create_task(converter.chunk_markdown(text, "one"))
    queued = asyncio.create_task(converter.convert(long_pdf, "big.pdf", DocType.pdf))
    await asyncio.sleep(0)  # both handed to the converter's thread
    queued.cancel()
    assert "First in line" in (await ahead)[0].text
    with pytest.raises(asyncio.CancelledError):
        await queued
    chunks = await converter.chunk_markdown("# After\n\nNothing was killed.", "x")
    assert "Nothing was killed" in chunks[0].text
    assert converter.starts == starts  # the PDF never reached the child


@pytest.mark.slow
async def test_a_crashing_child_fails_that_document_only(
    converter: Converter, long_pdf: bytes
) -> None:
    await converter.warm_up()
    pid = converter.pid
    assert pid is not None
    task = asyncio.create_task(converter.convert(long_pdf, "big.pdf", DocType.pdf))
    # Wait (no clock) until the request is in flight on the child; the converter's own
    # thread sets the flag, so there is no event of this loop to await.
    while not converter.busy and not task.done():  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    assert not task.done()
    assert converter.pid == pid  # the child that was warmed up is the one converting
    # What a segfault in a native parser looks like from here.
    os.kill(pid, signal.SIGSEGV)
    with pytest.raises(ConversionFailed, match=r"crashed on 'big\.pdf' \(killed by signal 11\)"):
        await task
    chunks = await converter.chunk_markdown("# After\n\nThe converter still works.", "x")
    assert "still works" in chunks[0].text
    assert converter.pid != pid


async def test_close_stops_the_child_for_good() -> None:
    conv = Converter(timeout=60.0, max_tokens=256)
    # Closing must also stop a child that is still importing docling.
    started = asyncio.create_task(conv.warm_up())
    while conv.pid is None and not started.done():  # noqa: ASYNC110 - set by its thread
        await asyncio.sleep(0.01)
    pid = conv.pid
    assert pid is not None
    assert not started.done()  # docling's import takes seconds: the child is still starting
    await conv.aclose()
    with pytest.raises(ConversionFailed):
        await started
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(ConversionFailed, match="shut down"):
        await conv.chunk_markdown("# x\n\ny", "x")


async def test_the_child_never_writes_to_stdout(converter: Converter) -> None:
    # In stdio mode the server's stdout is the MCP channel; the child inherits it.
    await converter.warm_up()
    pid = converter.pid
    assert pid is not None
    assert os.readlink(f"/proc/{pid}/fd/1") == os.readlink(f"/proc/{pid}/fd/2")
