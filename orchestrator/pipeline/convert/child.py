"""The docling child process: imports docling once, then converts and chunks on request.

Runs only in the process ``converter.Converter`` spawns. The protocol over the pipe is plain
tuples of picklable values:

- child → parent, once: ``("ready", None)`` or ``("fatal", message)``
- parent → child: ``("convert", data, filename, doc_type)`` or ``("markdown", text, name)``
- child → parent: ``("ok", (chunks, title, converter_name))``, ``("error", message)`` (a
  library's words), ``("refused", message)`` (ours, complete for a person) or
  ``("memory", None)``, after which the child exits (see limits.py)

A crash in a native parser kills only this process; the parent sees the pipe close.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import sys
import time
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
from orchestrator.pipeline.convert.limits import (
    ConvertLimits,
    apply_memory_limit,
    lift_memory_limit,
    ran_out_of_memory,
)
from shield_common.priority import lower_process_priority

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

# docling names a document it could not load by a 64-digit hash nobody can act on.
_HASH = re.compile(r"(?:\s*with (?:hash|key))?\s*(?:key=)?\b[0-9a-f]{64}\b")


class Refused(Exception):
    """A document this child will not convert; the message names it and says why."""


class Unconvertible(Exception):
    """docling's own account of a document it could not convert (its words, cleaned)."""


def _readable(reason: str) -> str:
    return _HASH.sub("", reason).strip()


def pdf_pages(data: bytes, filename: str) -> int:
    """The page count of a PDF, read by pdfium (which repairs a broken cross-reference
    table the way PDF viewers do); Refused when not even pdfium can open it."""
    import pypdfium2  # type: ignore[import-untyped]

    try:
        document = pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise Refused(
                f"{filename!r} is password-protected; remove the password (print or export "
                "it to a new PDF) and send it again."
            ) from None
        raise Refused(
            f"{filename!r} is damaged and cannot be read as a PDF ({str(exc).rstrip('.')}); "
            "it may be truncated. Open it in a PDF viewer and save or print it to a new PDF, "
            "then send that."
        ) from None
    try:
        return len(document)
    finally:
        document.close()


def _stem(name: str, fallback: str) -> str:
    """A name without directories, extension or leading dots: docling reads the type from
    the extension we add, and would take ".pdf" + ".md" for an unknown ".pdf.md"."""
    stem = os.path.basename(name).rpartition(".")[0] or os.path.basename(name)
    return stem.strip(".") or fallback


class DoclingWorker:
    def __init__(self, max_tokens: int, limits: ConvertLimits) -> None:
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
        self.limits = limits
        self.cap: int | None = None  # the address-space limit in force (limits.py)
        # How long the last request's chunking took, for the job's stage durations.
        self.chunk_seconds = 0.0

    def bound_memory(self) -> None:
        self.cap = apply_memory_limit(self.limits.memory_mb)

    def _pdf_converter(self) -> tuple[Any, str]:
        if self.pdf is not None:
            return self.pdf, self.pdf_name
        # Loaded on first use (most children never see a PDF), outside the documents'
        # budget: model weights must not count against the document that needed them.
        lift_memory_limit()
        try:
            return self._load_pdf_converter()
        finally:
            self.bound_memory()

    def _load_pdf_converter(self) -> tuple[Any, str]:
        """The standard pipeline when its model weights are on disk, else the native one."""
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
            reasons = "; ".join(_readable(e.error_message) for e in (result.errors or [])[:3])
            # The exception docling caught, if it kept one: ran_out_of_memory looks for a
            # MemoryError behind the text.
            raise Unconvertible(reasons or f"docling reported {result.status.value}") from (
                _rejection_cause(result)
            )
        return result.document

    def convert(self, data: bytes, filename: str, doc_type: str) -> Result:
        _fmt, ext = FORMATS[doc_type]
        stem = _stem(filename, "document")
        # The name's extension routes docling to the reader of the type we checked by
        # content, whatever the file was called.
        name = f"{stem}.{ext}"
        if doc_type == "pdf":
            pages = pdf_pages(data, filename)
            if pages > self.limits.max_pages:
                raise Refused(
                    f"{filename!r} has {pages:,} pages; this server converts at most "
                    f"{self.limits.max_pages:,} pages per PDF (SHIELD_CONVERT_MAX_PAGES). Split "
                    "it into smaller files, or raise the limit."
                )
            converter, converter_name = self._pdf_converter()
        else:
            converter, converter_name = self.office, CONVERTER_NAMES[doc_type]
        document = self._convert(converter, data, name)
        start = time.perf_counter()
        if doc_type == "pdf":
            chunks = chunk_paged_document(self.page_chunker, document)
        else:
            chunks = chunk_document(self.chunker, document)
        self.chunk_seconds = time.perf_counter() - start
        return chunks, document_title(document), converter_name

    def markdown(self, text: str, name: str) -> Result:
        stem = _stem(name, "page")
        document = self._convert(self.office, text.encode("utf-8"), f"{stem}.md")
        start = time.perf_counter()
        chunks = chunk_document(self.chunker, document)
        self.chunk_seconds = time.perf_counter() - start
        return chunks, document_title(document), "docling:md"


def _rejection_cause(result: Any) -> BaseException | None:
    try:
        from docling.datamodel.document import get_input_rejection_cause
    except ImportError:  # an older docling: the text alone must do
        return None
    cause: BaseException | None = get_input_rejection_cause(result.input)
    return cause


def serve(conn: Any, max_tokens: int, nice: int = 0, limits: ConvertLimits | None = None) -> None:
    """Entry point of the child process; ``nice``: its CPU priority (0: as its parent)."""
    lower_process_priority(nice)
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
    limits = limits or ConvertLimits()
    try:
        worker = DoclingWorker(max_tokens, limits)
        # Set once docling is loaded, so the budget is the documents' alone.
        worker.bound_memory()
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
            worker.chunk_seconds = 0.0
            if message[0] == "convert":
                reply: tuple[str, Any] = (
                    "ok",
                    (*worker.convert(*message[1:]), worker.chunk_seconds),
                )
            elif message[0] == "markdown":
                reply = ("ok", (*worker.markdown(*message[1:]), worker.chunk_seconds))
            else:
                reply = ("error", f"unknown request {message[0]!r}")
        except Refused as exc:
            reply = ("refused", str(exc)[:1000])
        except Exception as exc:  # a bad file fails its request, not the child
            if ran_out_of_memory(exc, worker.cap):
                # Whatever the failed allocation left half-built goes with this process:
                # the parent starts a fresh one.
                with contextlib.suppress(EOFError, OSError):
                    conn.send(("memory", None))
                return
            text = str(exc) if isinstance(exc, Unconvertible) else f"{type(exc).__name__}: {exc}"
            reply = ("error", text[:1000])
        try:
            conn.send(reply)
        except (EOFError, OSError):
            return
