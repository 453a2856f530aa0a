"""Where documents may come from: the ingest roots only, base64 within limits, public URLs."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from knowledge.errors import InvalidInput
from orchestrator.composition import pipeline_config
from orchestrator.pipeline.config import PipelineConfig
from orchestrator.pipeline.document.job import validate_document
from orchestrator.pipeline.document.sources import (
    decode_upload,
    read_path,
    resolve_path,
    url_filename,
)
from orchestrator.settings import OrchestratorSettings
from orchestrator_client.models import DocumentRequest
from tests.documents import write_md


def _request(**fields: object) -> DocumentRequest:
    return DocumentRequest.model_validate(fields)


async def test_a_file_inside_a_root_is_accepted(root: Path, config: PipelineConfig) -> None:
    path = write_md(root / "guide.md")
    await validate_document(_request(source=str(path)), config)
    assert read_path(str(path), config).data == path.read_bytes()


async def test_a_relative_path_is_read_inside_the_roots(root: Path, config: PipelineConfig) -> None:
    (root / "sub").mkdir()
    path = write_md(root / "sub" / "guide.md")
    assert resolve_path("sub/guide.md", config) == path.resolve()
    assert read_path("sub/guide.md", config).source == str(path.resolve())


async def test_a_file_outside_the_roots_is_refused(tmp_path: Path, config: PipelineConfig) -> None:
    outside = write_md(tmp_path / "secret.md")
    with pytest.raises(InvalidInput, match=r"outside the directories ingest_doc may read"):
        await validate_document(_request(source=str(outside)), config)


async def test_dot_dot_cannot_climb_out_of_a_root(
    root: Path, tmp_path: Path, config: PipelineConfig
) -> None:
    write_md(tmp_path / "secret.md")
    with pytest.raises(InvalidInput, match="outside"):
        await validate_document(_request(source="../secret.md"), config)
    with pytest.raises(InvalidInput, match="outside"):
        await validate_document(_request(source=f"{root}/../secret.md"), config)


async def test_a_symlink_escaping_a_root_is_refused(
    root: Path, tmp_path: Path, config: PipelineConfig
) -> None:
    secret = write_md(tmp_path / "secret.md")
    (root / "innocent.md").symlink_to(secret)
    with pytest.raises(InvalidInput, match=r"outside .* after following symbolic links"):
        await validate_document(_request(source=str(root / "innocent.md")), config)


async def test_a_symlink_within_the_roots_is_followed(root: Path, config: PipelineConfig) -> None:
    real = write_md(root / "real.md")
    (root / "alias.md").symlink_to(real)
    assert read_path(str(root / "alias.md"), config).source == str(real.resolve())


@pytest.mark.parametrize("source", ["loop.md", "loop.md/inner.md", "ping.md"])
async def test_a_loop_of_symlinks_is_refused_by_name(
    root: Path, config: PipelineConfig, source: str
) -> None:
    """Regression: Python 3.11 raises RuntimeError for a loop; the accept path answered 500."""
    (root / "loop.md").symlink_to(root / "loop.md")
    (root / "ping.md").symlink_to(root / "pong.md")
    (root / "pong.md").symlink_to(root / "ping.md")
    with pytest.raises(InvalidInput, match="loop of symbolic links"):
        await validate_document(_request(source=source), config)
    with pytest.raises(InvalidInput, match="loop of symbolic links"):
        read_path(str(root / source), config)


async def test_a_link_swapped_in_after_acceptance_is_refused_at_run_time(
    root: Path, tmp_path: Path, config: PipelineConfig
) -> None:
    path = write_md(root / "doc.md")
    await validate_document(_request(source=str(path)), config)
    secret = write_md(tmp_path / "secret.md")
    path.unlink()
    path.symlink_to(secret)
    with pytest.raises(InvalidInput, match="outside"):
        read_path(str(path), config)


async def test_paths_are_refused_when_no_roots_are_set(root: Path, store_root: Path) -> None:
    path = write_md(root / "guide.md")
    config = PipelineConfig(ingest_roots=())
    with pytest.raises(InvalidInput, match=r"SHIELD_INGEST_ROOTS is not set.*content_base64"):
        await validate_document(_request(source=str(path)), config)


async def test_roots_come_from_the_environment(
    root: Path, store_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = root.parent / "other-root"
    other.mkdir()
    monkeypatch.setenv("SHIELD_INGEST_ROOTS", f"{root}:{other}")
    config = pipeline_config(OrchestratorSettings(data_dir=store_root))
    path = write_md(other / "guide.md")
    await validate_document(_request(source=str(path)), config)


async def test_a_missing_file_and_a_directory_are_refused(
    root: Path, config: PipelineConfig
) -> None:
    with pytest.raises(InvalidInput, match=r"No file at"):
        await validate_document(_request(source=str(root / "nope.md")), config)
    (root / "folder").mkdir()
    with pytest.raises(InvalidInput, match=r"is not a regular file"):
        await validate_document(_request(source=str(root / "folder")), config)


async def test_an_oversize_file_is_refused(root: Path, config: PipelineConfig) -> None:
    path = root / "huge.txt"
    path.write_bytes(b"a" * (config.max_document_bytes + 1))
    with pytest.raises(
        InvalidInput, match=r"the limit is 2000000 bytes.*SHIELD_MAX_DOCUMENT_BYTES"
    ):
        await validate_document(_request(source=str(path)), config)


async def test_base64_content_is_decoded(config: PipelineConfig) -> None:
    encoded = base64.b64encode(b"# Title\n\nBody text.").decode()
    loaded = decode_upload(encoded, "../../etc/notes.md", config)
    assert loaded.data == b"# Title\n\nBody text."
    # Only the name part of a filename is kept: it never points anywhere.
    assert loaded.source == "upload:notes.md"
    # Line-wrapped, data-URL and URL-safe forms are common and accepted.
    wrapped = "data:text/markdown;base64," + "\n".join(
        encoded[i : i + 8] for i in range(0, len(encoded), 8)
    )
    assert decode_upload(wrapped, "n.md", config).data == loaded.data


async def test_bad_base64_is_refused(config: PipelineConfig) -> None:
    request = _request(content_base64="this is *not* base64!", filename="a.txt")
    with pytest.raises(InvalidInput, match=r"'a\.txt' is not valid base64"):
        await validate_document(request, config)


async def test_an_oversize_upload_is_refused(config: PipelineConfig) -> None:
    encoded = base64.b64encode(b"x" * (config.max_upload_bytes + 10)).decode()
    request = _request(content_base64=encoded, filename="big.txt")
    with pytest.raises(InvalidInput, match=r"SHIELD_MAX_UPLOAD_BYTES"):
        await validate_document(request, config)


async def test_a_private_address_url_is_refused(config: PipelineConfig) -> None:
    with pytest.raises(InvalidInput):
        await validate_document(_request(source="http://127.0.0.1:9/doc.pdf"), config)
    with pytest.raises(InvalidInput):
        await validate_document(_request(source="http://169.254.169.254/latest"), config)


def test_a_downloaded_file_is_named_after_its_content_type() -> None:
    assert url_filename("https://example.org/files/report.pdf", None) == "report.pdf"
    assert url_filename("https://example.org/view?id=3", "application/pdf") == "view.pdf"
    assert url_filename("https://example.org/", "text/html; charset=utf-8") == "download.html"
