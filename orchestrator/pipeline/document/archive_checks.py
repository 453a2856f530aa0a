"""What a DOCX, PPTX or XLSX (a ZIP package) may hold before the converter opens it.

Checked from the archive's directory and the first bytes of its XML parts, so nothing is
unpacked in full here:

- the sizes the parts declare: Python's ``zipfile`` (which every Office reader in the
  converter uses) never returns more bytes than a part declares, so their sum bounds what
  unpacking can produce. A 4 MB file that declares 3.5 GB is a zip bomb; python-pptx reads
  a slide whole, so without this check one PPTX held 3.5 GB in the converter (measured).
- the number of parts, so listing and checking them stays cheap;
- ``[Content_Types].xml``, which every Office Open XML package has;
- no DTD in any XML part: the standard forbids them (ECMA-376 Part 2, §8.1.4), and a DTD
  is how entity expansion ("billion laughs") and external entities (a part that pulls in
  ``file:///etc/passwd``) get into a parser.

The limits match docling's own for DOCX and XLSX (128 MiB per part, 512 MiB in all), so a
file refused here is one docling would refuse too, only later and in its own words; its
PPTX reader has none.
"""

from __future__ import annotations

import re
import zipfile
import zlib

from knowledge.errors import InvalidInput
from orchestrator_client.models import DocType

MAX_PARTS = 10_000
MAX_PART_BYTES = 128 * 1024 * 1024
MAX_UNPACKED_BYTES = 512 * 1024 * 1024
# The most repetitive Office XML measured here (the styles of python-docx's template)
# unpacks to 32 times its packed size; deflate's ceiling is about 1,030. Past this ratio a
# file was built to be small when packed, and the refusal says so.
BOMB_RATIO = 100
# A part's prolog (the XML declaration, perhaps a comment) is well under 200 bytes.
PROLOG_BYTES = 4096

_XML_SUFFIXES = (".xml", ".rels", ".vml")
_DTD = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_LABELS = {DocType.docx: "DOCX", DocType.pptx: "PPTX", DocType.xlsx: "XLSX"}


def _size(count: int) -> str:
    """Bytes for a person: '3.5 GB', '4.2 MB', '812 bytes'."""
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if count >= scale:
            return f"{count / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{count} bytes"


def _too_big(filename: str, what: str, unpacked: int, packed: int, limit: int) -> InvalidInput:
    ratio = unpacked // max(packed, 1)
    if ratio >= BOMB_RATIO:
        why = (
            f"{ratio} times its packed size of {_size(packed)}; real Office files unpack to "
            f"a few dozen times theirs, so this one is built to exhaust the server's memory "
            "(a 'zip bomb'). It was refused unread"
        )
    else:
        why = "more than this server unpacks; split the document into smaller files"
    return InvalidInput(
        f"{filename!r}: {what} would expand to {_size(unpacked)} when unpacked, over the "
        f"limit of {_size(limit)}: {why}."
    )


def check_sizes(infos: list[zipfile.ZipInfo], filename: str, packed: int) -> None:
    """Refuse an archive whose parts declare more than the limits allow (no unpacking)."""
    if len(infos) > MAX_PARTS:
        raise InvalidInput(
            f"{filename!r} has {len(infos)} parts in its archive; an Office document has at "
            f"most {MAX_PARTS} (most have a few dozen). It is not one this server converts."
        )
    for info in infos:
        if info.file_size > MAX_PART_BYTES:
            raise _too_big(
                filename,
                f"its part {info.filename}",
                info.file_size,
                info.compress_size,
                MAX_PART_BYTES,
            )
    total = sum(info.file_size for info in infos)
    if total > MAX_UNPACKED_BYTES:
        raise _too_big(filename, "its parts", total, packed, MAX_UNPACKED_BYTES)


def _declares_dtd(head: bytes) -> bool:
    """Whether an XML part's first bytes declare a DTD before its root element.

    Walks the prolog as a parser does (the XML declaration, processing instructions,
    comments, white space), so text that only looks like markup inside a comment neither
    hides a DTD nor counts as the root. A prolog longer than the bytes read is refused: an
    Office part's is under 200 bytes.
    """
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or head[:2] in (b"<\x00", b"\x00<"):
        head = head.decode("utf-16", errors="replace").encode("utf-8")
    text = head.removeprefix(b"\xef\xbb\xbf")
    at = 0
    while True:
        while at < len(text) and text[at] in b" \t\r\n":
            at += 1
        for opening, closing in ((b"<?", b"?>"), (b"<!--", b"-->")):
            if text.startswith(opening, at):
                end = text.find(closing, at + len(opening))
                if end < 0:  # the prolog goes on past what was read
                    return len(head) >= PROLOG_BYTES
                at = end + len(closing)
                break
        else:
            break
    if at >= len(text):
        return len(head) >= PROLOG_BYTES
    return _DTD.match(text, at) is not None


def check_xml_parts(archive: zipfile.ZipFile, filename: str, kind: DocType) -> None:
    """Refuse a package any of whose XML parts declares a DTD (read: its first 4 KiB)."""
    for info in archive.infolist():
        if info.is_dir() or not info.filename.lower().endswith(_XML_SUFFIXES):
            continue
        try:
            with archive.open(info) as part:
                head = part.read(PROLOG_BYTES)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, RuntimeError):
            # NotImplementedError (an unknown compression method) is a RuntimeError.
            raise InvalidInput(
                f"{filename!r}: its part {info.filename} cannot be unpacked (the archive is "
                "damaged or uses a method Office does not write). Re-save or re-export the "
                "document and send it again."
            ) from None
        if _declares_dtd(head):
            raise InvalidInput(
                f"{filename!r}: its part {info.filename} declares a DTD (<!DOCTYPE or "
                f"<!ENTITY>), which {_LABELS[kind]} files never contain (the Office Open XML "
                "standard forbids them). Such declarations are how entity-expansion and "
                "file-disclosure attacks reach a parser, so the file was refused. Open it in "
                "Office and save it again, or send the document in another format."
            )


def check_package(archive: zipfile.ZipFile, filename: str, kind: DocType, packed: int) -> None:
    """Every check of this module on an opened Office package of ``packed`` bytes."""
    infos = archive.infolist()
    check_sizes(infos, filename, packed)
    if "[Content_Types].xml" not in {info.filename for info in infos}:
        raise InvalidInput(
            f"{filename!r} has the parts of a {_LABELS[kind]} file but no "
            "[Content_Types].xml, which every Office Open XML package has: it was damaged "
            "or not written by an Office application. Open it in Office (or LibreOffice) "
            "and save it again."
        )
    if any(info.flag_bits & 0x1 for info in infos):
        raise InvalidInput(
            f"{filename!r} has encrypted parts; remove the password and send it again."
        )
    check_xml_parts(archive, filename, kind)
