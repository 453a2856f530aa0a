"""What a file really is, from its bytes: the extension and doc_type are claims to check.

Binary formats are recognised by content (``%PDF-``; the ZIP members that make a DOCX, PPTX
or XLSX). Text formats cannot be told apart by bytes alone, so for text the name or the
requested doc_type decides between HTML, Markdown, CSV and plain text, once the bytes have
decoded as text. A file that says one thing and is another (a PNG called ``.pdf``, a DOCX
sent with ``doc_type="pdf"``) is refused with both facts in the message. An Office package
must also pass ``archive_checks`` (zip bombs, DTDs), and HTML may not declare entities.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from dataclasses import dataclass

from knowledge.errors import InvalidInput
from orchestrator.pipeline.document import archive_checks
from orchestrator_client.models import DocType

BINARY = frozenset({DocType.pdf, DocType.docx, DocType.pptx, DocType.xlsx})

EXTENSIONS: dict[str, DocType] = {
    ".pdf": DocType.pdf,
    ".docx": DocType.docx,
    ".pptx": DocType.pptx,
    ".xlsx": DocType.xlsx,
    ".html": DocType.html,
    ".htm": DocType.html,
    ".xhtml": DocType.html,
    ".md": DocType.md,
    ".markdown": DocType.md,
    ".csv": DocType.csv,
    ".txt": DocType.txt,
    ".text": DocType.txt,
}

# The ZIP member that makes an Office Open XML package one kind or another.
_OOXML_MARKERS = (
    ("word/document.xml", DocType.docx),
    ("ppt/presentation.xml", DocType.pptx),
    ("xl/workbook.xml", DocType.xlsx),
)

# Formats people send by mistake, named so the refusal says what the file is.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "a legacy Office file (.doc/.xls/.ppt)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"\x7fELF", "an executable"),
    (b"MZ", "a Windows executable"),
)

_LABELS = {
    DocType.pdf: "PDF",
    DocType.docx: "DOCX",
    DocType.pptx: "PPTX",
    DocType.xlsx: "XLSX",
    DocType.html: "HTML",
    DocType.md: "Markdown",
    DocType.csv: "CSV",
    DocType.txt: "plain text",
}

_SUPPORTED = "PDF, DOCX, PPTX, XLSX, HTML, Markdown, CSV or plain text (UTF-8)"
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# A DOCTYPE with an internal subset ("<!DOCTYPE html [ ... ]>"): HTML has none; it is how
# entity declarations (entity expansion, external entities) would reach a parser.
_INTERNAL_SUBSET = re.compile(r"<!DOCTYPE[^>\[]{0,1024}\[", re.IGNORECASE)  # bounded: linear


@dataclass(frozen=True)
class Detected:
    doc_type: DocType
    # For text formats: the text re-encoded as UTF-8 without a byte-order mark.
    data: bytes


def label(doc_type: DocType) -> str:
    return _LABELS[doc_type]


def extension_type(filename: str) -> DocType | None:
    # Not os.path.splitext: it reads ".pdf" as a name without an extension, while a person
    # who names an upload ".pdf" says it is a PDF.
    _stem, dot, extension = os.path.basename(filename).rpartition(".")
    return EXTENSIONS.get(f".{extension.lower()}") if dot else None


def _ooxml_kind(data: bytes, filename: str) -> DocType:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            kind = next((kind for member, kind in _OOXML_MARKERS if member in names), None)
            if kind is None:
                raise InvalidInput(
                    f"{filename!r} is a ZIP archive, not a DOCX, PPTX or XLSX document. "
                    f"Send the documents inside it one by one ({_SUPPORTED})."
                )
            archive_checks.check_package(archive, filename, kind, len(data))
            return kind
    # A hostile directory can make zipfile fail in any of these ways (ValueError includes
    # a name that is not UTF-8, EOFError a record cut short).
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError):
        raise InvalidInput(
            f"{filename!r} starts like a ZIP-based Office file but the archive is damaged "
            "(truncated or corrupt). Re-save or re-export it and send it again."
        ) from None


def _decode_text(data: bytes) -> str | None:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            return None
    if b"\x00" in data[:8192]:
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        # A text file cut short (a truncated download, a full disk) can end inside a
        # character: keep the text before it rather than calling the file binary.
        if exc.reason == "unexpected end of data" and exc.start >= len(data) - 3:
            return _decode_text(data[: exc.start])
        return None


def _looks_like_html(text: str) -> bool:
    head = text.lstrip()[:512].lower()
    return head.startswith(("<!doctype html", "<html")) or "<html" in head


def _content_kind(data: bytes, filename: str) -> tuple[DocType | None, str]:
    """The binary type the bytes are, or (None, text) for text, or a refusal."""
    if data[:1024].lstrip().startswith(b"%PDF-") or b"%PDF-" in data[:1024]:
        return DocType.pdf, ""
    if data.startswith(b"PK\x03\x04"):
        return _ooxml_kind(data, filename), ""
    claimed = extension_type(filename)
    if data.startswith(_OLE) and claimed in (DocType.docx, DocType.pptx, DocType.xlsx):
        assert claimed is not None
        raise InvalidInput(
            f"{filename!r} is not a {label(claimed)} package: it is an OLE compound file, which "
            f"is what a password-protected (encrypted) {label(claimed)} is, or an old "
            f".{claimed.value[:3]} file renamed. Remove the password, or save it as "
            f".{claimed.value}, and send it again."
        )
    for magic, what in _MAGIC:
        if data.startswith(magic):
            raise InvalidInput(
                f"{filename!r} is {what}, not a document this server converts. Send {_SUPPORTED}."
            )
    text = _decode_text(data)
    if text is None:
        if claimed in BINARY:
            raise InvalidInput(
                f"{filename!r} is not a valid {label(claimed)} file: its content is not "
                f"{label(claimed)} data (corrupt, truncated, or mislabelled). "
                "Re-export the document and send it again."
            )
        raise InvalidInput(
            f"{filename!r} is binary data in no supported format. Send {_SUPPORTED}; "
            "text must be UTF-8 (or UTF-16 with a byte-order mark)."
        )
    return None, text


def detect(data: bytes, filename: str, declared: DocType | None = None) -> Detected:
    """The document type of ``data``, checked against its name and ``declared``.

    Raises InvalidInput naming the file and what it really is when they disagree.
    """
    if not data:
        raise InvalidInput(f"{filename!r} is empty (0 bytes); send a file with content.")
    binary, text = _content_kind(data, filename)
    by_name = extension_type(filename)
    if binary is not None:
        if declared is not None and declared != binary:
            raise InvalidInput(
                f"doc_type is {declared.value!r} but {filename!r} is a {label(binary)} "
                f"document. Set doc_type to {binary.value!r}, or leave it out to detect it."
            )
        if by_name is not None and by_name != binary:
            raise InvalidInput(
                f"{filename!r} is named like a {label(by_name)} file but is a "
                f"{label(binary)} document. Rename it to end in .{binary.value}."
            )
        return Detected(binary, data)
    if not text.strip():
        raise InvalidInput(f"{filename!r} contains only whitespace; send a file with text in it.")
    for claim, source in ((declared, "doc_type"), (by_name, "its name")):
        if claim in BINARY:
            assert claim is not None
            raise InvalidInput(
                f"{filename!r} is text, not a {label(claim)} file as {source} says: "
                "it is mislabelled or corrupt. Send the real document, or rename the file "
                "after its content (.txt, .md, .html, .csv)."
            )
    kind = declared or by_name or (DocType.html if _looks_like_html(text) else DocType.txt)
    if kind is DocType.html and _INTERNAL_SUBSET.search(text):
        raise InvalidInput(
            f"{filename!r} declares entities in its DOCTYPE (<!DOCTYPE ... [ <!ENTITY ...> ]>). "
            "HTML has no entity declarations; they are how entity-expansion and "
            "file-disclosure attacks reach a parser, so the file was refused. Remove the "
            "bracketed part of the DOCTYPE and send it again."
        )
    return Detected(kind, text.encode("utf-8"))
