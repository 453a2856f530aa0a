"""Errors the domain raises. Each message is written for the person who has to act on it."""

from __future__ import annotations


class KnowledgeError(Exception):
    """Base class: ``str(err)`` is a complete, actionable message."""

    code = "error"


class InvalidInput(KnowledgeError):
    """The caller sent something we refuse; the message says what to change."""

    code = "invalid_input"


class CollectionMismatch(KnowledgeError):
    """An existing collection cannot hold our vectors (size, distance or vector name)."""

    code = "collection_mismatch"


class DependencyUnavailable(KnowledgeError):
    """A dependency (embedding service, Qdrant server) failed or its breaker is open."""

    code = "dependency_unavailable"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DependencyRejected(KnowledgeError):
    """A dependency answered but refused the request (e.g. an unknown model name)."""

    code = "dependency_rejected"


class DataDirInUse(KnowledgeError):
    """Another process holds the embedded store's data directory."""

    code = "data_dir_in_use"


class CollectionDamaged(KnowledgeError):
    """The embedded store holds a payload it cannot read back (written by an old version)."""

    code = "collection_damaged"
