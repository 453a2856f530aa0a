"""Hostile documents, generated in the test: nothing binary is committed.

Each builder returns the bytes of one file someone might send to hurt the server or that a
broken tool might produce: zip bombs dressed as DOCX/XLSX, recursive and external XML
entities, PDFs with broken cross-reference tables, a 10,000-page PDF, files that claim one
type and are another, empty and truncated files. ``HOSTILE`` names them all with the file
name they are sent under and what a person should read in the job's error.

The zip bombs are written by hand (``raw_zip``): one deflate block of a megabyte of spaces,
flushed so that it can be repeated, stands for any number of megabytes, so a 3.5 GiB part
costs milliseconds and a few megabytes to build. The archives are valid: their CRCs are
right, so a reader that inflates them really gets gigabytes.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tests.documents import FILLER, png_bytes, write_docx, write_pdf, write_pptx, write_xlsx

MIB = 1 << 20
_SPACES = b" " * MIB


@dataclass(frozen=True)
class Member:
    """One ZIP member as it is stored: ``raw`` is already compressed with ``method``."""

    name: str
    raw: bytes
    crc: int
    size: int  # uncompressed, as declared in the headers
    method: int = zipfile.ZIP_DEFLATED


def deflated(name: str, data: bytes) -> Member:
    packer = zlib.compressobj(6, zlib.DEFLATED, -15)
    raw = packer.compress(data) + packer.flush()
    return Member(name, raw, zlib.crc32(data), len(data))


def repeated(name: str, head: bytes, unit: bytes, count: int, tail: bytes) -> Member:
    """``head + unit * count + tail`` deflated without ever holding it: after a full flush
    the compressor starts afresh, so the deflate bytes of ``unit`` are the same each time."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    start = packer.compress(head) + packer.flush(zlib.Z_FULL_FLUSH)
    block = packer.compress(unit) + packer.flush(zlib.Z_FULL_FLUSH)
    again = packer.compress(unit) + packer.flush(zlib.Z_FULL_FLUSH)
    assert block == again, "the unit's deflate block must not depend on what came before"
    end = packer.compress(tail) + packer.flush()
    crc = _crc32_combine(zlib.crc32(head), _crc32_repeated(unit, count), len(unit) * count)
    crc = _crc32_combine(crc, zlib.crc32(tail), len(tail))
    size = len(head) + len(unit) * count + len(tail)
    assert size < 1 << 32, "raw_zip writes no ZIP64 records"
    return Member(name, start + block * count + end, crc, size)


def _gf2_times(matrix: list[int], vector: int) -> int:
    total, row = 0, 0
    while vector:
        if vector & 1:
            total ^= matrix[row]
        vector >>= 1
        row += 1
    return total


def _gf2_square(matrix: list[int]) -> list[int]:
    return [_gf2_times(matrix, matrix[n]) for n in range(32)]


def _crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """zlib's ``crc32_combine`` (not exposed by Python): the CRC-32 of A+B from the CRCs
    of A and B and the length of B, in O(log len2) instead of reading B."""
    if len2 == 0:
        return crc1
    odd = [0xEDB88320] + [1 << (n - 1) for n in range(1, 32)]  # one zero bit
    even = _gf2_square(odd)  # two zero bits
    odd = _gf2_square(even)  # four zero bits
    while True:
        even = _gf2_square(odd)
        if len2 & 1:
            crc1 = _gf2_times(even, crc1)
        len2 >>= 1
        if not len2:
            break
        odd = _gf2_square(even)
        if len2 & 1:
            crc1 = _gf2_times(odd, crc1)
        len2 >>= 1
        if not len2:
            break
    return crc1 ^ crc2


def _crc32_repeated(unit: bytes, count: int) -> int:
    """The CRC-32 of ``unit * count`` by doubling: gigabytes cost milliseconds."""
    result, power, size = 0, zlib.crc32(unit), len(unit)
    while count:
        if count & 1:
            result = _crc32_combine(result, power, size)
        power = _crc32_combine(power, power, size)
        size *= 2
        count >>= 1
    return result


def raw_zip(members: list[Member]) -> bytes:
    """A plain (not ZIP64) archive of ``members``, written field by field."""
    out = io.BytesIO()
    central = io.BytesIO()
    for member in members:
        name = member.name.encode()
        offset = out.tell()
        # version 20, no flags, DOS time/date of 1980-01-01 00:00
        fields = (20, 0, member.method, 0, 0x21, member.crc, len(member.raw), member.size)
        out.write(struct.pack("<IHHHHHIII", 0x04034B50, *fields))
        out.write(struct.pack("<HH", len(name), 0) + name + member.raw)
        central.write(struct.pack("<IH", 0x02014B50, 20))
        central.write(struct.pack("<HHHHHIII", *fields))
        central.write(struct.pack("<HHHHHII", len(name), 0, 0, 0, 0, 0, offset) + name)
    start = out.tell()
    directory = central.getvalue()
    out.write(directory)
    count = len(members)
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(directory), start, 0))
    return out.getvalue()


def _members_of(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def _rezip(parts: dict[str, bytes], replaced: dict[str, Member] | None = None) -> bytes:
    replaced = replaced or {}
    members = [replaced.get(name) or deflated(name, data) for name, data in parts.items()]
    members += [m for name, m in replaced.items() if name not in parts]
    return raw_zip(members)


@cache
def sample_docx() -> bytes:
    return _built(write_docx, "sample.docx")


@cache
def sample_xlsx() -> bytes:
    return _built(write_xlsx, "sample.xlsx")


@cache
def sample_pptx() -> bytes:
    return _built(write_pptx, "sample.pptx")


@cache
def sample_pdf() -> bytes:
    return _built(write_pdf, "sample.pdf")


def _built(write: Callable[[Path], Path], name: str) -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        return write(Path(directory) / name).read_bytes()


# --- zip bombs ------------------------------------------------------------------------------


def _split_after(xml: bytes, marker: bytes) -> tuple[bytes, bytes]:
    at = xml.index(marker) + len(marker)
    return xml[:at], xml[at:]


def _inflated(package: bytes, name: str, after: bytes, inflated_mib: int) -> bytes:
    """``package`` with its part ``name`` grown to ``inflated_mib`` MiB of whitespace right
    after ``after`` (still well-formed XML), compressed to about 1/1000 of that."""
    parts = _members_of(package)
    head, tail = _split_after(parts[name], after)
    return _rezip(parts, {name: repeated(name, head, _SPACES, inflated_mib, tail)})


@cache
def docx_zip_bomb(inflated_mib: int = 3584) -> bytes:
    """A DOCX whose ``word/document.xml`` inflates to 3.5 GiB from about 3.6 MB."""
    return _inflated(sample_docx(), "word/document.xml", b"<w:body>", inflated_mib)


@cache
def xlsx_zip_bomb(inflated_mib: int = 3584) -> bytes:
    """An XLSX whose first sheet inflates to 3.5 GiB, the same way."""
    return _inflated(sample_xlsx(), "xl/worksheets/sheet1.xml", b"<sheetData>", inflated_mib)


@cache
def pptx_zip_bomb(inflated_mib: int = 3584) -> bytes:
    """A PPTX whose first slide inflates to 3.5 GiB, the same way."""
    return _inflated(sample_pptx(), "ppt/slides/slide1.xml", b"<p:spTree>", inflated_mib)


@cache
def docx_many_parts_bomb(parts_count: int = 2000, part_mib: int = 4) -> bytes:
    """A DOCX carrying ``parts_count`` media parts of ``part_mib`` MiB each (8 GiB in all
    by default): no single part is remarkable, their sum is."""
    parts = _members_of(sample_docx())
    padding = repeated("word/media/pad.bin", b"", _SPACES, part_mib, b"")
    extra = {
        f"word/media/pad{i}.bin": Member(
            f"word/media/pad{i}.bin", padding.raw, padding.crc, padding.size
        )
        for i in range(parts_count)
    }
    return _rezip(parts, extra)


@cache
def docx_paragraph_flood(inflated_mib: int = 120) -> bytes:
    """A 150 KB DOCX within every archive limit (one 120 MiB part) whose 3.5 million
    paragraphs take gigabytes to parse: only the converter's memory limit stops it."""
    parts = _members_of(sample_docx())
    head, tail = _split_after(parts["word/document.xml"], b"<w:body>")
    paragraph = b"<w:p><w:r><w:t>ok</w:t></w:r></w:p>"
    unit = paragraph * (MIB // len(paragraph))
    flood = repeated("word/document.xml", head, unit, inflated_mib, tail)
    return _rezip(parts, {"word/document.xml": flood})


# --- XML entities -----------------------------------------------------------------------------

_LAUGHS = "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
BILLION_LAUGHS_DTD = f'<!DOCTYPE lolz [<!ENTITY lol0 "lol">{_LAUGHS}]>'
XXE_DTD = '<!DOCTYPE doc [<!ENTITY secret SYSTEM "file:///etc/passwd">]>'


def _docx_with_dtd(dtd: str, reference: str) -> bytes:
    parts = _members_of(sample_docx())
    xml = parts["word/document.xml"].decode()
    declaration, _, rest = xml.partition("?>")
    # The entity sits where the document's own sentence was: a parser that expands it puts
    # a billion "lol"s (or the server's /etc/passwd) in the passage that gets indexed.
    rest = rest.replace("Our sourdough starter", f"Our {reference} starter", 1)
    parts["word/document.xml"] = f"{declaration}?>\n{dtd}{rest}".encode()
    return _rezip(parts)


def docx_billion_laughs() -> bytes:
    return _docx_with_dtd(BILLION_LAUGHS_DTD, "&lol9;")


def docx_external_entity() -> bytes:
    return _docx_with_dtd(XXE_DTD, "&secret;")


def html_billion_laughs() -> bytes:
    return (
        f"{BILLION_LAUGHS_DTD.replace('lolz', 'html', 1)}\n<html><head><title>Laughs</title>"
        "</head><body><h1>Laughs</h1><p>&lol9;</p></body></html>\n"
    ).encode()


def html_external_entity() -> bytes:
    return (
        f"{XXE_DTD.replace('doc', 'html', 1)}\n<html><body><p>&secret;</p></body></html>\n"
    ).encode()


# --- PDFs ---------------------------------------------------------------------------------------


def pdf_broken_xref() -> bytes:
    """A real PDF whose cross-reference table points every object at the wrong byte and
    whose ``startxref`` points past the end: a reader must rebuild it from the objects."""
    data = sample_pdf()
    table_at = data.rindex(b"\nxref\n") + 1
    trailer_at = data.index(b"trailer", table_at)
    table = data[table_at:trailer_at]
    lines = table.split(b"\n")
    broken = [
        b"0000000001" + line[10:] if len(line) == 20 and line.endswith(b" n ") else line
        for line in lines
    ]
    data = data[:table_at] + b"\n".join(broken) + data[trailer_at:]
    start = data.rindex(b"startxref\n") + len(b"startxref\n")
    end = data.index(b"\n", start)
    return data[:start] + b"999999999" + data[end:]


def pdf_xref_loop() -> bytes:
    """A PDF with an incremental update whose trailer's ``/Prev`` names its own
    cross-reference section: a reader that follows ``/Prev`` naively never stops."""
    data = sample_pdf()
    root = data[data.rindex(b"/Root") :].split(b"R", 1)[0] + b"R"
    size = data[data.rindex(b"/Size") :].split(b"/", 2)[1].strip()
    at = len(data)
    section = (
        b"xref\n0 1\n0000000000 65535 f \ntrailer\n<< /"
        + size
        + b" "
        + root
        + b" /Prev "
        + str(at).encode()
        + b" >>\nstartxref\n"
        + str(at).encode()
        + b"\n%%EOF\n"
    )
    return data + section


def pdf_garbage_body() -> bytes:
    """The header and trailer of a PDF around bytes that are no PDF objects at all."""
    return b"%PDF-1.7\n" + bytes(range(256)) * 64 + b"\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"


@cache
def long_text_pdf(pages: int = 10_000) -> bytes:
    """A text-only PDF of ``pages`` pages, one short line on each (fpdf2: ~seconds)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=10)
    for number in range(1, pages + 1):
        pdf.add_page()
        pdf.text(20, 20, f"Page {number}: {FILLER[:60]}")
    return bytes(pdf.output())


# --- files that are not what they say ------------------------------------------------------


def plain_zip() -> bytes:
    """A ZIP archive with no Office parts (a folder of notes someone zipped)."""
    return _rezip({"notes/readme.txt": b"Nothing Office about this archive.\n"})


def ooxml_without_content_types() -> bytes:
    """The parts of a DOCX without ``[Content_Types].xml``, which every package has."""
    parts = _members_of(sample_docx())
    del parts["[Content_Types].xml"]
    return _rezip(parts)


def encrypted_office() -> bytes:
    """The start of an OLE compound file: what a password-protected DOCX/XLSX really is."""
    return b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(4088)


def truncated(data: bytes, keep: float = 0.5) -> bytes:
    return data[: max(1, int(len(data) * keep))]


@dataclass(frozen=True)
class Hostile:
    key: str  # test id
    filename: str  # the name it is sent under
    build: Callable[[], bytes]
    says: str  # a regular expression the error message must match (besides the name)
    # Who refuses it: the type checks of the worker ("detect", error code invalid_input)
    # or the converter child ("converter", conversion_failed) without dying.
    checked_by: str = "detect"

    @property
    def code(self) -> str:
        return "invalid_input" if self.checked_by == "detect" else "conversion_failed"


_BOMB = r"expand to 3\.5 GB .* 'zip bomb'"
HOSTILE: tuple[Hostile, ...] = (
    Hostile("docx-zip-bomb", "bomb.docx", docx_zip_bomb, _BOMB),
    Hostile("xlsx-zip-bomb", "bomb.xlsx", xlsx_zip_bomb, _BOMB),
    Hostile("pptx-zip-bomb", "bomb.pptx", pptx_zip_bomb, _BOMB),
    Hostile("docx-many-parts", "parts.docx", docx_many_parts_bomb, r"parts would expand to 7\.8"),
    Hostile("docx-billion-laughs", "laughs.docx", docx_billion_laughs, r"declares a DTD"),
    Hostile("docx-external-entity", "xxe.docx", docx_external_entity, r"declares a DTD"),
    Hostile("html-billion-laughs", "laughs.html", html_billion_laughs, r"declares entities"),
    Hostile("html-external-entity", "xxe.html", html_external_entity, r"declares entities"),
    Hostile("png-as-pdf", "photo.pdf", png_bytes, r"is a PNG image"),
    Hostile("pdf-as-docx", "report.docx", sample_pdf, r"named like a DOCX file but is a PDF"),
    Hostile("zip-as-docx", "archive.docx", plain_zip, r"ZIP archive, not a DOCX"),
    Hostile(
        "docx-without-content-types",
        "parts-only.docx",
        ooxml_without_content_types,
        r"no \[Content_Types\]\.xml",
    ),
    Hostile("encrypted-docx", "secret.docx", encrypted_office, r"password-protected"),
    Hostile("truncated-docx", "cut.docx", lambda: truncated(sample_docx()), r"damaged"),
    Hostile("truncated-xlsx", "cut.xlsx", lambda: truncated(sample_xlsx()), r"damaged"),
    Hostile("truncated-pptx", "cut.pptx", lambda: truncated(sample_pptx()), r"damaged"),
    *(
        Hostile(f"empty-{ext}", f"empty.{ext}", lambda: b"", r"is empty \(0 bytes\)")
        for ext in ("pdf", "docx", "pptx", "xlsx", "html", "md", "csv", "txt")
    ),
    Hostile(
        "truncated-pdf",
        "cut.pdf",
        lambda: truncated(sample_pdf(), 0.6),
        r"damaged .* may be truncated",
        "converter",
    ),
    Hostile(
        "pdf-garbage-body", "garbage.pdf", pdf_garbage_body, r"damaged and cannot", "converter"
    ),
    Hostile("pdf-xref-loop", "loop.pdf", pdf_xref_loop, r"could not load", "converter"),
    # The limit is the test's (SHIELD_CONVERT_MAX_PAGES=2000): see test_hostile_files.py.
    Hostile("pdf-10000-pages", "long.pdf", long_text_pdf, r"has 10,000 pages", "converter"),
)
