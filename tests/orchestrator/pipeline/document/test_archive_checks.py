"""The worker's own checks of a file before any converter sees it: zip bombs, DTDs, damaged
archives, files that are not what their name says. Nothing here unpacks a bomb: the checks
read the archive's directory and the first bytes of its XML parts.

The same files go through whole jobs in tests/orchestrator/pipeline/test_hostile_files.py.
"""

from __future__ import annotations

import io
import re
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from knowledge.errors import InvalidInput
from orchestrator.pipeline.document import archive_checks
from orchestrator.pipeline.document.filetypes import detect
from orchestrator_client.models import DocType
from tests.documents import PHRASES
from tests.hostile_documents import (
    HOSTILE,
    MIB,
    Hostile,
    deflated,
    raw_zip,
    sample_docx,
    sample_pptx,
    sample_xlsx,
)

REFUSED_BY_DETECT = [h for h in HOSTILE if h.checked_by == "detect"]


@pytest.mark.parametrize("hostile", REFUSED_BY_DETECT, ids=lambda h: h.key)
def test_a_hostile_file_is_refused_naming_it_and_saying_why(hostile: Hostile) -> None:
    with pytest.raises(InvalidInput) as refused:
        detect(hostile.build(), hostile.filename)
    message = str(refused.value)
    assert repr(hostile.filename) in message
    assert re.search(hostile.says, message), message


@pytest.mark.parametrize(
    ("build", "name", "kind"),
    [
        (sample_docx, "notes.docx", DocType.docx),
        (sample_xlsx, "sheet.xlsx", DocType.xlsx),
        (sample_pptx, "deck.pptx", DocType.pptx),
    ],
)
def test_real_office_files_pass_every_check(build: object, name: str, kind: DocType) -> None:
    assert callable(build)
    assert detect(build(), name).doc_type is kind


def _docx_with_document_xml(xml: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(sample_docx())) as archive:
        parts = {info.filename: archive.read(info) for info in archive.infolist()}
    parts["word/document.xml"] = xml
    return raw_zip([deflated(name, data) for name, data in parts.items()])


def test_a_dtd_hidden_behind_a_long_comment_is_refused() -> None:
    # A DTD may follow any number of comments; a prolog longer than any Office part has
    # is refused rather than read on.
    xml = b"<?xml version='1.0'?><!--" + b"x" * 8192 + b"--><!DOCTYPE d []><w:document/>"
    with pytest.raises(InvalidInput, match=r"part word/document\.xml declares a DTD"):
        detect(_docx_with_document_xml(xml), "comment.docx")


def test_markup_inside_a_comment_neither_hides_a_dtd_nor_counts_as_the_root() -> None:
    xml = b"<?xml version='1.0'?><!-- <w:document> --><!DOCTYPE d [<!ENTITY e 'x'>]><w:document/>"
    with pytest.raises(InvalidInput, match=r"declares a DTD"):
        detect(_docx_with_document_xml(xml), "sly.docx")


def test_a_dtd_in_a_utf16_part_is_refused() -> None:
    xml = "<?xml version='1.0' encoding='UTF-16'?><!DOCTYPE d []><w:document/>"
    with pytest.raises(InvalidInput, match=r"declares a DTD"):
        detect(_docx_with_document_xml(xml.encode("utf-16")), "wide.docx")


def test_an_oversized_archive_that_is_no_bomb_is_told_to_split() -> None:
    # Parts that unpack to a few times their packed size: a big document, not an attack.
    part = zipfile.ZipInfo("xl/worksheets/sheet1.xml")
    part.file_size, part.compress_size = 600 * MIB, 150 * MIB
    with pytest.raises(InvalidInput) as refused:
        archive_checks.check_sizes([part], "big.xlsx", packed=150 * MIB)
    message = str(refused.value)
    assert "'big.xlsx'" in message and "split the document" in message
    assert "zip bomb" not in message


def test_too_many_parts_are_refused() -> None:
    parts = [zipfile.ZipInfo(f"p{i}.xml") for i in range(archive_checks.MAX_PARTS + 1)]
    with pytest.raises(InvalidInput, match=r"'many\.docx' has 10001 parts"):
        archive_checks.check_sizes(parts, "many.docx", packed=1)


def test_a_text_file_cut_inside_a_character_keeps_its_text() -> None:
    # A truncated download can end half-way through a UTF-8 character: still text, not
    # "binary data".
    whole = f"{PHRASES['txt']} Café".encode()
    found = detect(whole[:-1], "diary.txt")
    assert found.doc_type is DocType.txt
    assert found.data.decode() == f"{PHRASES['txt']} Caf"


def test_invalid_utf8_in_the_middle_is_still_refused() -> None:
    with pytest.raises(InvalidInput, match=r"binary data"):
        detect(b"caf\xc3 and more text after the bad byte", "notes.txt")


@settings(
    max_examples=150,
    deadline=None,
    database=None,  # no .hypothesis directory in the repository
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    keep=st.floats(min_value=0.0, max_value=1.0),
    flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(1, 255)), max_size=8),
)
def test_a_damaged_docx_is_refused_in_words_or_accepted(
    keep: float, flips: list[tuple[float, int]]
) -> None:
    """Whatever bytes a damaged DOCX ends up with, the checks answer InvalidInput (a
    message for a person) or pass it on; never a zipfile or zlib error."""
    whole = sample_docx()
    data = bytearray(whole[: max(4, int(len(whole) * keep))])
    for where, mask in flips:
        data[int(where * (len(data) - 1))] ^= mask
    try:
        detect(bytes(data), "damaged.docx")
    except InvalidInput as exc:
        assert "'damaged.docx'" in str(exc)
