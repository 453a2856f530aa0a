"""Errors of the orchestrator's domain. Each message is written for the person who acts on it.

``code`` is what a failed job reports in ``error.code``; ``transient`` says whether trying
the same job again later may succeed (only those are retried).
"""

from __future__ import annotations

from knowledge.errors import DependencyUnavailable, KnowledgeError


class JobCancelled(KnowledgeError):
    """Raised at a pipeline checkpoint once cancellation was requested."""

    code = "cancelled"


class FetchFailed(KnowledgeError):
    code = "fetch_failed"

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class ConversionFailed(KnowledgeError):
    code = "conversion_failed"


class StageTimeout(KnowledgeError):
    code = "timeout"

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


def is_transient(exc: BaseException) -> bool:
    """Worth another attempt: the dependency may be back, the network may recover."""
    if isinstance(exc, DependencyUnavailable):
        return True
    return bool(getattr(exc, "transient", False))
