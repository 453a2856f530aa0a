"""The docling child process: imports docling once, then converts and chunks on request.

Runs only in the process ``converter.Converter`` spawns. The protocol over the pipe is plain
tuples of picklable values:

- child → parent, once: ``("ready", None)`` or ``("fatal", message)``
- parent → child: ``("convert", data, filename, doc_type)`` or ``("markdown", text, name)``
- child → parent: ``("ok", (chunks, title, converter_name))`` or ``("error", message)``

A crash in a native parser kills only this process; the parent sees the pipe close.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from io import BytesIO
from typing import Any

from orchestrator.pipeline.convert.chunking import (
    Chunk,
    chunk_document,
    chunk_paged_document,
    document_title,
    make_chunker,
    make_tokenizer,
)

# Set before docling (and huggingface_hub, transformers) are imported: the child never
# reaches the network, it uses what is on disk or fails fast.
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "TOKENIZERS_PARALLELISM": "false",
}

# doc_type -> (docling InputFormat value, extension docling recognises). Plain text goes
# through docling's Markdown reader: it has no plain-text backend of its own.
FORMATS: dict[str, tuple[str, str]] = {
    "pdf": ("pdf", "pdf"),
    "docx": ("docx", "docx"),
    "pptx": ("pptx", "pptx"),
    "xlsx": ("xlsx", "xlsx"),
    "html": ("html", "html"),
    "md": ("md", "md"),
    "csv": ("csv", "csv"),
    "txt": ("md", "md"),
}
CONVERTER_NAMES = {
    "docx": "docling:docx",
    "pptx": "docling:pptx",
    "xlsx": "docling:xlsx",
    "html": "docling:html",
    "md": "docling:md",
    "csv": "docling:csv",
    "txt": "docling:txt-as-md",
}

Result = tuple[list[Chunk], str | None, str]


def _stem(name: str, fallback: str) -> str:
    """A name without directories, extension or leading dots: docling reads the type from
    the extension we add, and would take ".pdf" + ".md" for an unknown ".pdf.md"."""
    stem = os.path.basename(name).rpartition(".")[0] or os.path.basename(name)
    return stem.strip(".") or fallback


class DoclingWorker:
    def __init__(self, max_tokens: int) -> None:
        from docling.datamodel.base_models import InputFormat
        from docling.document_converter import DocumentConverter

        tokenizer = make_tokenizer(max_tokens)  # reads the tokenizer file once for both
        self.chunker = make_chunker(tokenizer)
        self.page_chunker = make_chunker(tokenizer, merge=False)
        self.office = DocumentConverter(
            allowed_formats=[
                InputFormat(FORMATS[t][0]) for t in ("docx", "pptx", "xlsx", "html", "md", "csv")
            ]
        )
        self.pdf: Any = None
        self.pdf_name = ""

    def _pdf_converter(self) -> tuple[Any, str]:
        """The standard pipeline when its model weights are on disk, else the native one."""
        if self.pdf is not None:
            return self.pdf, self.pdf_name
        from docling.datamodel.base_models import InputFormat
        from docling.datamodel.pipeline_options import NativePdfPipelineOptions
        from docling.document_converter import DocumentConverter, PdfFormatOption
        from docling.pipeline.native_pdf_pipeline import NativePdfPipeline

        try:
            standard = DocumentConverter(allowed_formats=[InputFormat.PDF])
            # Loads the layout (and OCR, table) weights; offline and absent, this raises.
            standard.initialize_pipeline(InputFormat.PDF)
            self.pdf, self.pdf_name = standard, "docling:standard-pdf"
        except Exception as exc:  # any failure to load the models means "absent"
            logging.getLogger(__name__).info("standard PDF pipeline unavailable: %s", exc)
            native = PdfFormatOption(
                pipeline_cls=NativePdfPipeline,
                pipeline_options=NativePdfPipelineOptions(generate_page_images=False),
            )
            self.pdf = DocumentConverter(
                allowed_formats=[InputFormat.PDF], format_options={InputFormat.PDF: native}
            )
            self.pdf_name = "docling:native-pdf"
        return self.pdf, self.pdf_name

    def _convert(self, converter: Any, data: bytes, name: str) -> Any:
        from docling.datamodel.base_models import ConversionStatus, DocumentStream

        result = converter.convert(
            DocumentStream(name=name, stream=BytesIO(data)), raises_on_error=False
        )
        if result.status not in (ConversionStatus.SUCCESS, ConversionStatus.PARTIAL_SUCCESS):
            reasons = "; ".join(e.error_message for e in (result.errors or [])[:3])
            raise ValueError(reasons or f"docling reported {result.status.value}")
        return result.document

    def convert(self, data: bytes, filename: str, doc_type: str) -> Result:
        _fmt, ext = FORMATS[doc_type]
        stem = _stem(filename, "document")
        # The name's extension routes docling to the reader of the type we checked by
        # content, whatever the file was called.
        name = f"{stem}.{ext}"
        if doc_type == "pdf":
            converter, converter_name = self._pdf_converter()
        else:
            converter, converter_name = self.office, CONVERTER_NAMES[doc_type]
        document = self._convert(converter, data, name)
        if doc_type == "pdf":
            chunks = chunk_paged_document(self.page_chunker, document)
        else:
            chunks = chunk_document(self.chunker, document)
        return chunks, document_title(document), converter_name

    def markdown(self, text: str, name: str) -> Result:
        stem = _stem(name, "page")
        document = self._convert(self.office, text.encode("utf-8"), f"{stem}.md")
        chunks = chunk_document(self.chunker, document)
        return chunks, document_title(document), "docling:md"


def serve(conn: Any, max_tokens: int) -> None:
    """Entry point of the child process."""
    # The parent owns this process's life: a Ctrl-C in the terminal reaches the whole
    # process group, and the parent decides what happens to in-flight conversions.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # stdout may be the MCP stdio channel of the server that started us; anything docling
    # prints must not land in the protocol stream.
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    os.environ.update(OFFLINE_ENV)
    # docling logs each failure it also returns to us; the job error already says it.
    logging.getLogger("docling").setLevel(logging.ERROR)
    logging.getLogger("docling_core").setLevel(logging.ERROR)
    try:
        worker = DoclingWorker(max_tokens)
    except BaseException as exc:  # any start-up failure goes to the parent
        conn.send(("fatal", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", None))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        try:
            if message[0] == "convert":
                reply: tuple[str, Any] = ("ok", worker.convert(*message[1:]))
            elif message[0] == "markdown":
                reply = ("ok", worker.markdown(*message[1:]))
            else:
                reply = ("error", f"unknown request {message[0]!r}")
        except Exception as exc:  # a bad file fails its request, not the child
            reply = ("error", f"{type(exc).__name__}: {exc}"[:1000])
        try:
            conn.send(reply)
        except (EOFError, OSError):
            return
