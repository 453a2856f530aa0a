"""How the orchestrator's answers become the domain's errors on the client side.

4xx answers are the caller's to fix: they become InvalidInput, JobNotFound, JobConflict or
DependencyRejected and never count against the circuit breaker.
"""

from __future__ import annotations

import json

import httpx

from knowledge.errors import (
    DependencyRejected,
    DependencyUnavailable,
    InvalidInput,
    KnowledgeError,
)
from orchestrator_client.errors import JobConflict, JobNotFound

MAX_MESSAGE_CHARS = 500
DEFAULT_RETRY_AFTER = 5.0


def server_message(response: httpx.Response) -> str:
    """The ``error.message`` of an ErrorBody, else the start of whatever came back."""
    try:
        body = response.json()
        message = body["error"]["message"]
        if isinstance(message, str) and message:
            return message[:MAX_MESSAGE_CHARS]
    except (ValueError, KeyError, TypeError, json.JSONDecodeError):
        pass
    text = response.text.strip()
    return text[:MAX_MESSAGE_CHARS] if text else f"HTTP {response.status_code}"


def retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return DEFAULT_RETRY_AFTER


def rejection(response: httpx.Response, where: str) -> KnowledgeError:
    """The error for a 4xx answer of the orchestrator at ``where`` (a redacted URL)."""
    status = response.status_code
    message = server_message(response)
    if status in (401, 403):
        return DependencyRejected(
            f"The orchestrator at {where} refused the request (HTTP {status}): {message} "
            "Check that SHIELD_ORCHESTRATOR_TOKEN is the orchestrator's token."
        )
    if status == 404:
        return JobNotFound(message)
    if status == 409:
        return JobConflict(message)
    if status in (400, 413, 422):
        return InvalidInput(message)
    if status == 429:
        return DependencyUnavailable(
            f"The orchestrator at {where} is busy (HTTP 429): {message}",
            retry_after=retry_after(response),
        )
    return DependencyRejected(
        f"The orchestrator at {where} refused the request (HTTP {status}): {message}"
    )


def dependency_error(response: httpx.Response) -> KnowledgeError:
    """The error for a 502/503 the orchestrator sent about a dependency of its own."""
    message = server_message(response)
    if response.status_code == 503:
        wait = response.headers.get("retry-after")
        return DependencyUnavailable(message, retry_after=retry_after(response) if wait else None)
    return DependencyRejected(message)


def from_error_event(code: str, message: str) -> KnowledgeError:
    """The error an event stream ended with (``event: error``)."""
    if code == JobNotFound.code:
        return JobNotFound(message)
    if code == JobConflict.code:
        return JobConflict(message)
    if code == InvalidInput.code:
        return InvalidInput(message)
    return DependencyUnavailable(
        f"The orchestrator's event stream failed: {message}", retry_after=DEFAULT_RETRY_AFTER
    )
