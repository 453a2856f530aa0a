"""The type of a file is read from its bytes; names and doc_type are claims that are checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.errors import InvalidInput
from orchestrator.pipeline.document.filetypes import detect
from orchestrator_client.models import DocType
from tests.documents import (
    write_docx_as,
    write_empty,
    write_png_as,
    write_random_bytes,
    write_truncated_pdf,
)


@pytest.mark.parametrize("kind", ["pdf", "docx", "pptx", "xlsx", "html", "md", "csv", "txt"])
def test_each_real_file_is_recognised(samples: dict[str, Path], kind: str) -> None:
    path = samples[kind]
    assert detect(path.read_bytes(), path.name).doc_type == DocType(kind)


@pytest.mark.parametrize("kind", ["pdf", "docx", "pptx", "xlsx"])
def test_binary_formats_are_recognised_without_a_telling_name(
    samples: dict[str, Path], kind: str
) -> None:
    assert detect(samples[kind].read_bytes(), "upload.bin").doc_type == DocType(kind)


def test_html_without_an_extension_is_recognised_by_content() -> None:
    data = b"<!DOCTYPE html><html><body><p>hi</p></body></html>"
    assert detect(data, "page").doc_type == DocType.html


def test_png_named_pdf_is_refused_saying_what_it_is(tmp_path: Path) -> None:
    path = write_png_as(tmp_path / "photo.pdf")
    with pytest.raises(InvalidInput, match=r"'photo\.pdf' is a PNG image"):
        detect(path.read_bytes(), path.name)


def test_a_docx_named_pdf_is_refused(tmp_path: Path) -> None:
    path = write_docx_as(tmp_path / "report.pdf")
    with pytest.raises(InvalidInput, match=r"named like a PDF file but is a DOCX.*\.docx"):
        detect(path.read_bytes(), path.name)


def test_doc_type_that_disagrees_with_the_content_is_refused(samples: dict[str, Path]) -> None:
    data = samples["docx"].read_bytes()
    with pytest.raises(InvalidInput, match=r"doc_type is 'pdf'.*is a DOCX document"):
        detect(data, "notes.docx", DocType.pdf)


def test_text_claiming_to_be_a_pdf_is_refused() -> None:
    with pytest.raises(InvalidInput, match=r"is text, not a PDF file as doc_type says"):
        detect(b"just some words", "words", DocType.pdf)


def test_random_bytes_named_docx_are_refused_as_not_docx(tmp_path: Path) -> None:
    path = write_random_bytes(tmp_path / "broken.docx")
    with pytest.raises(InvalidInput, match=r"'broken\.docx' is not a valid DOCX file"):
        detect(path.read_bytes(), path.name)


def test_a_damaged_docx_archive_is_refused(samples: dict[str, Path]) -> None:
    data = samples["docx"].read_bytes()
    with pytest.raises(InvalidInput, match=r"archive is damaged"):
        detect(data[: len(data) // 3], "cut.docx")


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    path = write_empty(tmp_path / "nothing.pdf")
    with pytest.raises(InvalidInput, match=r"'nothing\.pdf' is empty \(0 bytes\)"):
        detect(path.read_bytes(), path.name)


def test_a_truncated_pdf_still_claims_pdf(tmp_path: Path) -> None:
    # Its header survives; docling then fails it (test_convert checks that message).
    path = write_truncated_pdf(tmp_path / "cut.pdf")
    assert detect(path.read_bytes(), path.name).doc_type == DocType.pdf


def test_utf16_text_is_normalised_to_utf8() -> None:
    found = detect("Grüße aus Köln".encode("utf-16"), "note.txt")
    assert found.doc_type == DocType.txt
    assert found.data.decode("utf-8") == "Grüße aus Köln"


def test_a_zip_that_is_no_office_document_is_refused(tmp_path: Path) -> None:
    import zipfile

    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a.txt", "hello")
    with pytest.raises(InvalidInput, match=r"is a ZIP archive, not a DOCX, PPTX or XLSX"):
        detect(archive.read_bytes(), "bundle.docx")
