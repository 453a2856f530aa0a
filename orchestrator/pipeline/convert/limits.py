"""What one document may cost the docling child: memory and pages.

Memory is bounded by the kernel, not by watching: once docling is loaded the child lowers
its own address-space limit (``RLIMIT_AS``) to what it uses then plus ``memory_mb`` (and
again after loading the PDF pipeline on first use, which is not a document's cost). An
allocation past it fails inside the child (Python raises ``MemoryError``; libxml2 and
pdfium report an allocation failure), that request fails, and the child exits so the next
document starts on a fresh process with nothing left over. Whatever a document does, the
child's resident memory stays below that limit, and the worker's own never sees the
document's unpacked data.

Pages are counted before docling reads a PDF, so a document past ``max_pages`` fails at
once with the number, instead of after ``SHIELD_CONVERT_TIMEOUT`` seconds of converting.
"""

from __future__ import annotations

import re
import resource
from dataclasses import dataclass
from pathlib import Path

MIB = 1 << 20
# A failed request whose process came this close to the limit ran out of memory, even if
# the library that failed reported something else (docling folds errors into text).
NEAR_LIMIT = 64 * MIB
_OUT_OF_MEMORY_TEXT = re.compile(
    r"memory allocation failed|out of memory|cannot allocate memory|unable to allocate|"
    r"std::bad_alloc|MemoryError",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ConvertLimits:
    memory_mb: int = 4096  # SHIELD_CONVERT_MAX_MEMORY_MB: beyond what the child uses at start
    max_pages: int = 10_000  # SHIELD_CONVERT_MAX_PAGES: pages per PDF


def _status_kib(field: str, pid: int | str = "self") -> int | None:
    """A ``VmSize``-style field of /proc/<pid>/status, in KiB (None off Linux or gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    found = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(found.group(1)) if found else None


def apply_memory_limit(memory_mb: int) -> int | None:
    """Cap this process's address space at its current size plus ``memory_mb``; returns
    the cap in bytes, or None where the size cannot be read (not Linux)."""
    size_kib = _status_kib("VmSize")
    if size_kib is None:
        return None
    cap = size_kib * 1024 + memory_mb * MIB
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    return cap


def lift_memory_limit() -> None:
    """Raise the soft limit back to the hard one (allowed to any process), e.g. to load
    models; ``apply_memory_limit`` then caps again from the new size."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (hard, hard))


def ran_out_of_memory(exc: BaseException, cap: int | None) -> bool:
    """Whether a failed request failed for want of memory: a ``MemoryError`` (or a
    library's allocation failure) anywhere in its chain, or a peak at the cap."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, MemoryError) or _OUT_OF_MEMORY_TEXT.search(str(current)):
            return True
        current = current.__cause__ or current.__context__
    if cap is None:
        return False
    peak_kib = _status_kib("VmPeak")
    return peak_kib is not None and peak_kib * 1024 >= cap - NEAR_LIMIT


def peak_near_cap(pid: int) -> bool:
    """Whether process ``pid``'s peak address space came within reach of its own cap: the
    parent asks while the child lives, since a child dying in native code at its cap (a
    thread it cannot create, an allocator's abort) never gets to say so itself."""
    try:
        cap, _hard = resource.prlimit(pid, resource.RLIMIT_AS)
    except (OSError, ValueError):  # gone already
        return False
    peak_kib = _status_kib("VmPeak", pid)
    if cap == resource.RLIM_INFINITY or peak_kib is None:
        return False
    return peak_kib * 1024 >= cap - NEAR_LIMIT
