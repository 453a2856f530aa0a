"""What the ingestion suite feeds in: the local site (in a process of its own) and a
folder of mixed documents with distinct text.

The site is ``benchmarks.site.serve_site`` (the crawl tests' site too) run in a child
process, so neither the naive script nor the harness's MCP client shares a GIL with the
web server they measure against.

The documents are written with the same libraries as ``tests/documents.py`` (fpdf,
python-docx, python-pptx, openpyxl), but each carries its own paragraphs from the seeded
benchmark corpus: the test generators write one fixed sentence per format, so copies of
them would be identical text (skipped as unchanged) and a chunk or two each, too little
work for a rate.

    python -m benchmarks.ingestion.inputs site --pages 150 --paragraphs 6
    (prints {"url": ..., "pages": ...} as one JSON line, serves until stdin closes)
"""

from __future__ import annotations

import argparse
import csv
import html
import json
import subprocess
import sys
from pathlib import Path
from types import TracebackType

from benchmarks.corpus import make_documents
from benchmarks.harness import REPO
from benchmarks.site import fact, serve_site

FORMATS = ("pdf", "docx", "pptx", "xlsx", "html", "md", "csv", "txt")
SECTION_EVERY = 4  # paragraphs per section heading


def _sections(paragraphs: list[str], name: str) -> list[tuple[str, list[str]]]:
    out = []
    for n in range(0, len(paragraphs), SECTION_EVERY):
        out.append((f"{name} part {n // SECTION_EVERY + 1}", paragraphs[n : n + SECTION_EVERY]))
    return out


def _pdf(path: Path, title: str, sections: list[tuple[str, list[str]]]) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    pdf.add_page()
    pdf.multi_cell(0, 6, title, new_x="LMARGIN", new_y="NEXT")
    for heading, paras in sections:
        pdf.multi_cell(0, 6, heading, new_x="LMARGIN", new_y="NEXT")
        for para in paras:
            pdf.multi_cell(0, 6, para, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))


def _docx(path: Path, title: str, sections: list[tuple[str, list[str]]]) -> None:
    import docx

    document = docx.Document()
    document.add_heading(title, level=1)
    for heading, paras in sections:
        document.add_heading(heading, level=2)
        for para in paras:
            document.add_paragraph(para)
    document.save(str(path))


def _pptx(path: Path, title: str, sections: list[tuple[str, list[str]]]) -> None:
    from pptx import Presentation

    deck = Presentation()
    first = deck.slides.add_slide(deck.slide_layouts[0])
    first.shapes.title.text = title
    for heading, paras in sections:
        for para in paras:
            slide = deck.slides.add_slide(deck.slide_layouts[1])
            slide.shapes.title.text = heading
            slide.placeholders[1].text = para
    deck.save(str(path))


def _xlsx(path: Path, title: str, sections: list[tuple[str, list[str]]]) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Notes"
    sheet.append(["section", "text"])
    for heading, paras in sections:
        for para in paras:
            sheet.append([heading, para])
    book.save(str(path))


def _html(path: Path, title: str, sections: list[tuple[str, list[str]]]) -> None:
    body = "".join(
        f"<h2>{html.escape(h)}</h2>" + "".join(f"<p>{html.escape(p)}</p>" for p in paras)
        for h, paras in sections
    )
    path.write_text(
        f"<!DOCTYPE html><html><head><title>{html.escape(title)}</title></head><body>"
        f"<h1>{html.escape(title)}</h1>{body}</body></html>",
        encoding="utf-8",
    )


def _md(path: Path, title: str, sections: list[tuple[str, list[str]]]) -> None:
    parts = [f"# {title}"]
    for heading, paras in sections:
        parts += [f"## {heading}", *paras]
    path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")


def _csv(path: Path, title: str, sections: list[tuple[str, list[str]]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["section", "text"])
        for heading, paras in sections:
            for para in paras:
                writer.writerow([heading, para])


def _txt(path: Path, title: str, sections: list[tuple[str, list[str]]]) -> None:
    parts = [title]
    for heading, paras in sections:
        parts += [heading, *paras]
    path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")


_WRITERS = {
    "pdf": _pdf,
    "docx": _docx,
    "pptx": _pptx,
    "xlsx": _xlsx,
    "html": _html,
    "md": _md,
    "csv": _csv,
    "txt": _txt,
}


def write_documents(
    directory: Path, *, copies: int, paragraphs: int, seed: int, offset: int = 0
) -> list[Path]:
    """``copies`` files per format, each with ``paragraphs`` paragraphs no other file has.

    ``offset`` shifts the corpus window, so a second folder written with another offset
    shares no text with the first.
    """
    directory.mkdir(parents=True, exist_ok=True)
    texts = [d.text for d in make_documents(offset + len(FORMATS) * copies * paragraphs, seed)]
    out: list[Path] = []
    n = offset
    for copy in range(copies):
        for fmt in FORMATS:
            name = f"{fmt}-report-{copy + 1:02d}"
            path = directory / f"{name}.{fmt}"
            _WRITERS[fmt](path, f"Report {name}", _sections(texts[n : n + paragraphs], name))
            n += paragraphs
            out.append(path)
    return out


def doc_probe(paragraphs: int, seed: int) -> tuple[str, str]:
    """A search for one paragraph of the first Markdown file, and a piece of its text.

    The query is the paragraph's first twelve words; the hit should contain its first six.
    """
    texts = [d.text for d in make_documents(len(FORMATS) * paragraphs, seed)]
    para = texts[FORMATS.index("md") * paragraphs + 1]
    words = para.split()
    return " ".join(words[:12]), " ".join(words[:6])


def site_probe(pages: int) -> tuple[str, str]:
    """A search for the fact of a deep page of the site, and what its hit must contain."""
    n = max(1, pages - 3)
    return fact(n), f"page-{n:02d} fact"


class SiteProcess:
    """``benchmarks.site.serve_site`` in a child process; a context manager."""

    def __init__(self, pages: int, paragraphs: int) -> None:
        self.pages = pages
        self.paragraphs = paragraphs
        self.url = ""
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> SiteProcess:
        argv = [sys.executable, "-m", "benchmarks.ingestion.inputs", "site"]
        argv += ["--pages", str(self.pages), "--paragraphs", str(self.paragraphs)]
        self._proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            self._proc.wait(timeout=10)
            raise RuntimeError(f"the site process exited with {self._proc.returncode}")
        self.url = json.loads(line)["url"]
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        assert proc.stdin is not None
        proc.stdin.close()  # the child serves until its stdin closes
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _serve_site(pages: int, paragraphs: int) -> None:
    # A short slow page: its 5 s default would only add a fixed wait to every crawl.
    with serve_site(pages, paragraphs=paragraphs, slow_delay=0.3) as site:
        print(json.dumps({"url": site.url, "pages": site.pages}), flush=True)
        sys.stdin.read()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ingestion.inputs")
    sub = p.add_subparsers(dest="what", required=True)
    site = sub.add_parser("site", help="serve the local test site until stdin closes")
    site.add_argument("--pages", type=int, default=150)
    site.add_argument("--paragraphs", type=int, default=6)
    docs = sub.add_parser("docs", help="write the mixed documents into a folder")
    docs.add_argument("directory", type=Path)
    docs.add_argument("--copies", type=int, default=5)
    docs.add_argument("--paragraphs", type=int, default=16)
    docs.add_argument("--seed", type=int, default=20261123)
    args = p.parse_args(argv)
    if args.what == "site":
        _serve_site(args.pages, args.paragraphs)
    else:
        for path in write_documents(
            args.directory, copies=args.copies, paragraphs=args.paragraphs, seed=args.seed
        ):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
