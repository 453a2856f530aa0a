"""Real test documents, written with the libraries people make them with.

Every format carries its own distinctive sentences (``PHRASES``) so a semantic search can
tell whether that document's text arrived; paged formats put theirs on a later page. Bad
inputs (corrupt, empty, mislabelled) come from here too, so every test means the same
thing by "a truncated PDF". Other helpers' tests use these generators as well.
"""

from __future__ import annotations

import csv
import os
import zlib
from collections.abc import Callable
from pathlib import Path

# One sentence per format, on topics far apart so the nearest hit of each is its own.
PHRASES: dict[str, str] = {
    "pdf": "The lighthouse keeper of Vardo logged seventeen humpback whales before dawn.",
    "docx": "Our sourdough starter doubles in volume within six hours at twenty-four degrees.",
    "pptx": "Quarterly copper futures rallied after the Chilean mine strike ended.",
    "xlsx": "Saturn's moon Enceladus sprays salty water geysers from its southern pole.",
    "html": "The violinist retuned her Stradivarius between the second and third movements.",
    "md": "Glacier meltwater carved the limestone canyon over forty thousand years.",
    "csv": "Emperor penguins huddle together to survive Antarctic winter blizzards.",
    "txt": "The blacksmith quenched the red-hot horseshoe in a barrel of rainwater.",
}

# Section headings the structured formats carry (checked in chunk.headings).
HEADINGS: dict[str, str] = {
    "docx": "Fermentation Notes",
    "md": "Canyon Geology",
    "html": "Concert Review",
}

FILLER = (
    "This paragraph is ordinary filler text about nothing in particular, written so the "
    "document has more than one chunk worth of words and the chunker has work to do. "
)


def write_pdf(path: Path, *, pages: int = 3) -> Path:
    """Several pages of text; the distinctive sentence is on page 2 (and the last)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for number in range(1, pages + 1):
        pdf.add_page()
        pdf.multi_cell(0, 6, f"Page {number} of the annual report.", new_x="LMARGIN", new_y="NEXT")
        if number >= 2:
            pdf.multi_cell(0, 6, PHRASES["pdf"], new_x="LMARGIN", new_y="NEXT")
        pdf.multi_cell(0, 6, FILLER * 3, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))
    return path


def write_docx(path: Path) -> Path:
    import docx

    document = docx.Document()
    document.add_heading("Kitchen Handbook", level=1)
    document.add_paragraph(FILLER)
    document.add_heading(HEADINGS["docx"], level=2)
    document.add_paragraph(PHRASES["docx"])
    document.add_paragraph(FILLER)
    document.save(str(path))
    return path


def write_pptx(path: Path) -> Path:
    from pptx import Presentation

    deck = Presentation()
    title_slide = deck.slides.add_slide(deck.slide_layouts[0])
    title_slide.shapes.title.text = "Commodities Briefing"
    title_slide.placeholders[1].text = "Prepared for the trading desk"
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Metals"
    slide.placeholders[1].text = PHRASES["pptx"]
    deck.save(str(path))
    return path


def write_xlsx(path: Path) -> Path:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Astronomy"
    sheet.append(["Body", "Fact"])
    sheet.append(["Mars", "Mars has the tallest volcano in the solar system."])
    sheet.append(["Enceladus", PHRASES["xlsx"]])
    book.save(str(path))
    return path


def write_html(path: Path) -> Path:
    path.write_text(
        "<!DOCTYPE html><html><head><title>Evening Programme</title></head><body>"
        "<h1>Evening Programme</h1>"
        f"<p>{FILLER}</p>"
        f"<h2>{HEADINGS['html']}</h2>"
        f"<p>{PHRASES['html']}</p>"
        "</body></html>",
        encoding="utf-8",
    )
    return path


def write_md(path: Path) -> Path:
    path.write_text(
        f"# Field Trip Guide\n\n{FILLER}\n\n## {HEADINGS['md']}\n\n{PHRASES['md']}\n\n{FILLER}\n",
        encoding="utf-8",
    )
    return path


def write_csv(path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["animal", "note"])
        writer.writerow(["penguin", PHRASES["csv"]])
        writer.writerow(["albatross", "Albatrosses glide for hours without flapping."])
    return path


def write_txt(path: Path) -> Path:
    path.write_text(f"Workshop diary\n\n{FILLER}\n\n{PHRASES['txt']}\n", encoding="utf-8")
    return path


WRITERS: dict[str, Callable[[Path], Path]] = {
    "pdf": write_pdf,
    "docx": write_docx,
    "pptx": write_pptx,
    "xlsx": write_xlsx,
    "html": write_html,
    "md": write_md,
    "csv": write_csv,
    "txt": write_txt,
}


def write_all(directory: Path) -> dict[str, Path]:
    """One file per format in ``directory``, named ``sample.<ext>``."""
    directory.mkdir(parents=True, exist_ok=True)
    return {kind: write(directory / f"sample.{kind}") for kind, write in WRITERS.items()}


# --- bad inputs ---------------------------------------------------------------------------


def png_bytes() -> bytes:
    """A real 1x1 PNG image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = (1).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def write_truncated_pdf(path: Path) -> Path:
    """A real PDF cut off after its first few hundred bytes (header intact, body gone)."""
    whole = write_pdf(path.with_name(path.stem + "-whole.pdf")).read_bytes()
    path.write_bytes(whole[:400])
    return path


def write_random_bytes(path: Path, size: int = 4096) -> Path:
    """Noise under any name (e.g. ``broken.docx``)."""
    path.write_bytes(os.urandom(size))
    return path


def write_empty(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def write_png_as(path: Path) -> Path:
    """PNG bytes under a document's name (e.g. ``photo.pdf``)."""
    path.write_bytes(png_bytes())
    return path


def write_docx_as(path: Path) -> Path:
    """A real DOCX under another name (e.g. ``report.pdf``)."""
    whole = write_docx(path.with_name(path.stem + "-real.docx"))
    path.write_bytes(whole.read_bytes())
    return path


def write_blank_pdf(path: Path) -> Path:
    """A valid PDF whose pages carry no text at all (converts to nothing)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.add_page()
    pdf.output(str(path))
    return path


def write_long_pdf(path: Path, *, pages: int = 300) -> Path:
    """Many dense pages, written fast: a document that takes docling seconds to read."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=8)
    for number in range(1, pages + 1):
        pdf.add_page()
        for line in range(60):
            pdf.text(10, 10 + line * 4.5, f"Page {number} line {line}: {FILLER[:110]}")
    pdf.output(str(path))
    return path
