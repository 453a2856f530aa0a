"""Where a document's bytes come from: a path inside the ingest roots, base64, or a URL.

Paths are resolved (symlinks followed) and must land inside one of SHIELD_INGEST_ROOTS
(also resolved). Containment is checked before existence, so a caller learns nothing about
files outside the roots. The check runs when the job is accepted and again when it runs;
the run-time read opens the checked path without following a final symlink and re-checks
the opened file's real location, so a link swapped in between is refused too.
"""

from __future__ import annotations

import base64
import binascii
import errno
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from knowledge.errors import InvalidInput
from orchestrator.pipeline.config import PipelineConfig
from orchestrator.pipeline.document.filetypes import extension_type

_URLSAFE = str.maketrans("-_", "+/")
_DATA_URL = re.compile(r"^data:[^,]*;base64,", re.IGNORECASE)
_CONTENT_TYPES = {
    "application/pdf": ".pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "text/html": ".html",
    "application/xhtml+xml": ".html",
    "text/markdown": ".md",
    "text/x-markdown": ".md",
    "text/csv": ".csv",
    "text/plain": ".txt",
}


@dataclass(frozen=True)
class Loaded:
    data: bytes
    filename: str  # what messages call the document; its extension is a type hint
    source: str  # stored as metadata.source: resolved path, final URL, or "upload:<name>"
    # A path or URL names one document over time: a new version replaces the old one's
    # passages. An upload's name does not (two reports may both be "report.pdf"), so its
    # passages are never pruned as stale; re-sending the same bytes still skips them all.
    replaces_earlier: bool = True


def is_url(source: str) -> bool:
    return source.strip().lower().startswith(("http://", "https://"))


# -- paths ---------------------------------------------------------------------------------


def _roots(config: PipelineConfig) -> list[Path]:
    if not config.ingest_roots:
        raise InvalidInput(
            "Reading files from the server's disk is turned off: SHIELD_INGEST_ROOTS is not "
            "set. Set it to the directories ingest_doc may read (separated by "
            f"{os.pathsep!r}), or send the file as content_base64 with a filename."
        )
    return [Path(root).resolve() for root in config.ingest_roots]


def _inside(path: Path, roots: list[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def _unusable(source: str, exc: OSError) -> InvalidInput:
    """What the file system said about a path, for the person who gave it."""
    if exc.errno == errno.ENAMETOOLONG:
        return InvalidInput(
            f"{source[:200]!r}: a name in this path is longer than the file system allows "
            "(usually 255 bytes per name); check the path."
        )
    return InvalidInput(f"Cannot use {source[:200]!r}: {exc.strerror or exc}; check the path.")


def resolve_path(source: str, config: PipelineConfig) -> Path:
    """The real path of ``source``, refused unless it is inside an ingest root."""
    try:
        return _resolve_path(source, config)
    except OSError as exc:  # a name too long, a loop of links, a permission denied...
        raise _unusable(source, exc) from None
    except RuntimeError:  # how Python before 3.13 reports a loop of links in resolve()
        raise InvalidInput(
            f"{source[:200]!r} leads into a loop of symbolic links; check the path."
        ) from None


def _resolve_path(source: str, config: PipelineConfig) -> Path:
    roots = _roots(config)
    if "\x00" in source:
        raise InvalidInput("source contains a NUL character; give a plain file path.")
    given = Path(source.strip())
    # A relative path is read against each root in turn; the first that has it wins.
    candidates = [given] if given.is_absolute() else [root / given for root in roots]
    resolved = [c.resolve() for c in candidates]
    inside = [p for p in resolved if _inside(p, roots)]
    if not inside:
        shown = os.pathsep.join(str(r) for r in roots)
        raise InvalidInput(
            f"{source!r} is outside the directories ingest_doc may read ({shown}), "
            "after following symbolic links. Move or copy the file there, or add its "
            "directory to SHIELD_INGEST_ROOTS."
        )
    path = next((p for p in inside if p.exists()), inside[0])
    if not path.exists():
        raise InvalidInput(f"No file at {source!r} (looked for {path}); check the path.")
    if not path.is_file():
        raise InvalidInput(f"{source!r} is not a regular file ({path}); give a file's path.")
    return path


def check_path_size(path: Path, source: str, config: PipelineConfig) -> int:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise _unusable(source, exc) from None
    if size > config.max_document_bytes:
        raise InvalidInput(
            f"{source!r} is {size} bytes; the limit is {config.max_document_bytes} bytes "
            "(SHIELD_MAX_DOCUMENT_BYTES). Split the document or raise the limit."
        )
    if size == 0:
        raise InvalidInput(f"{source!r} is empty (0 bytes); give a file with content.")
    return size


def read_path(source: str, config: PipelineConfig) -> Loaded:
    """Re-check and read a path source (blocking: run it in a thread)."""
    path = resolve_path(source, config)
    check_path_size(path, source, config)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InvalidInput(f"{source!r} changed into a symbolic link; refused.") from None
        raise InvalidInput(f"Could not open {source!r}: {exc.strerror}.") from None
    with os.fdopen(fd, "rb") as handle:
        real = Path(f"/proc/self/fd/{fd}")
        if real.exists() and not _inside(real.resolve(), _roots(config)):
            raise InvalidInput(f"{source!r} moved outside the ingest roots while queued; refused.")
        data = handle.read(config.max_document_bytes + 1)
    if len(data) > config.max_document_bytes:
        raise InvalidInput(
            f"{source!r} grew past the limit of {config.max_document_bytes} bytes "
            "(SHIELD_MAX_DOCUMENT_BYTES)."
        )
    return Loaded(data=data, filename=path.name, source=str(path))


# -- uploads ---------------------------------------------------------------------------------


def upload_name(filename: str) -> str:
    """The file name without any directories (a name, never a path to anything)."""
    name = PurePosixPath(filename.replace("\\", "/").strip()).name
    if not name or name in (".", ".."):
        raise InvalidInput(f"filename {filename!r} has no name part; give e.g. 'report.pdf'.")
    return name


def decode_upload(content_base64: str, filename: str, config: PipelineConfig) -> Loaded:
    name = upload_name(filename)
    text = _DATA_URL.sub("", content_base64.strip(), count=1)
    text = "".join(text.split())  # line-wrapped base64 is common
    limit = config.max_upload_bytes
    if len(text) // 4 * 3 > limit + 3:
        raise InvalidInput(
            f"content_base64 of {name!r} decodes to about {len(text) // 4 * 3} bytes; the "
            f"limit is {limit} bytes (SHIELD_MAX_UPLOAD_BYTES). Put large files in an ingest "
            "root and pass its path as source, or give a URL."
        )
    # The URL-safe alphabet and missing padding are common variants; accept them too.
    normal = text.translate(_URLSAFE)
    normal += "=" * (-len(normal) % 4)
    try:
        data = base64.b64decode(normal, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(
            f"content_base64 of {name!r} is not valid base64; encode the file's bytes "
            "with standard base64 (e.g. `base64 -w0 file`)."
        ) from None
    if len(data) > limit:
        raise InvalidInput(
            f"{name!r} is {len(data)} bytes; the upload limit is {limit} bytes "
            "(SHIELD_MAX_UPLOAD_BYTES)."
        )
    if not data:
        raise InvalidInput(f"content_base64 of {name!r} is empty; send the file's bytes.")
    return Loaded(data=data, filename=name, source=f"upload:{name}", replaces_earlier=False)


# -- URLs ------------------------------------------------------------------------------------


def url_filename(url: str, content_type: str | None) -> str:
    """A name for a downloaded document whose extension says what the server sent."""
    name = PurePosixPath(unquote(urlsplit(url).path)).name or "download"
    if extension_type(name) is None and content_type:
        ext = _CONTENT_TYPES.get(content_type.split(";", 1)[0].strip().lower())
        if ext:
            name += ext
    return name
