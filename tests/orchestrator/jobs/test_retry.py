"""Retries back off exponentially, and jobs that failed together do not retry together."""

from __future__ import annotations

import random

from orchestrator.jobs.retry import backoff_delay


def test_each_delay_lies_in_the_upper_half_of_its_exponential_step() -> None:
    rng = random.Random(7)
    for attempt, step in ((1, 2.0), (2, 4.0), (3, 8.0)):
        delays = [backoff_delay(attempt, 2.0, rng) for _ in range(200)]
        assert all(step / 2 <= d <= step for d in delays), (attempt, min(delays), max(delays))


def test_jobs_that_failed_at_once_spread_their_retries() -> None:
    """Twenty jobs whose dependency went down together: their retries do not coincide."""
    rng = random.Random(11)
    delays = sorted(backoff_delay(1, 2.0, rng) for _ in range(20))
    assert delays[-1] - delays[0] > 0.5  # spread over most of the one-second window
    assert len({round(d, 3) for d in delays}) == 20
