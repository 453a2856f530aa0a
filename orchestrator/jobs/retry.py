"""Which failures are retried, after how long, and how a failure is reported."""

from __future__ import annotations

import random

from knowledge.errors import KnowledgeError
from orchestrator_client.models import JobError


def backoff_delay(attempt: int, base_seconds: float, rng: random.Random | None = None) -> float:
    """Seconds before attempt ``attempt + 1``: ``base·2^(attempt-1)``, jittered.

    Jobs that failed together (a dependency went down) must not all come back at the same
    instant when it recovers: each delay is drawn from the upper half of the exponential
    step ("equal jitter"), so the retries spread out but still back off.
    """
    step: float = base_seconds * 2.0 ** (attempt - 1)
    jitter: float = (rng or random).uniform(0, step / 2)
    return step / 2 + jitter


def error_of(exc: BaseException, job_id: str) -> JobError:
    if isinstance(exc, KnowledgeError):
        return JobError(code=exc.code, message=str(exc))
    return JobError(
        code="internal",
        message=(
            f"The worker hit an unexpected error ({type(exc).__name__}: {exc}). This is a bug; "
            f"the worker log has the traceback (search for job {job_id})."
        ),
    )
