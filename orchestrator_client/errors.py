"""Errors of the orchestrator's contract: both sides of the API raise and catch these.

The job service raises them, the HTTP layer maps them to 404 / 409, and the client maps
those answers back (answers.py), so a caller sees the same error in-process or remote.
"""

from __future__ import annotations

from knowledge.errors import KnowledgeError


class JobNotFound(KnowledgeError):
    code = "not_found"


class JobConflict(KnowledgeError):
    """The request clashes with the job's state (e.g. an Idempotency-Key reused for other work)."""

    code = "conflict"
