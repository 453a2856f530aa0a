"""The job service: accept, look up, wait for and cancel jobs. What the HTTP routes call.

Accepting a job validates, persists and enqueues it, nothing more: no fetching,
converting or embedding happens on this path (it answers an HTTP 202).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from knowledge.errors import InvalidInput
from orchestrator.jobs import metrics
from orchestrator.jobs.queue import JobQueue
from orchestrator.jobs.store import DuplicateKey, JobStore, NewJob
from orchestrator.shared_locks import local_lock
from orchestrator_client.errors import JobConflict, JobNotFound
from orchestrator_client.models import (
    Job,
    JobKind,
    JobPage,
    JobRequest,
    JobStatus,
)

log = logging.getLogger(__name__)

MAX_KEY_CHARS = 200
MAX_PAGE = 100
# Far past any real job count, far below the 64-bit integers SQL databases keep.
MAX_OFFSET = 1_000_000_000
POLL_SECONDS = 0.2

# Refuses (InvalidInput) a request that cannot succeed, before it is stored: the pipeline's
# checks (network rules, ingest roots, sizes), bound to its configuration.
Validator = Callable[[JobRequest], Awaitable[Any]]


class Changes:
    """Wakes everyone waiting in this process when a job changes (on top of polling)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self, _job_id: str = "") -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), seconds)


def public_request(payload: dict[str, Any]) -> dict[str, Any]:
    """The request as get/list show it: uploaded bytes replaced by their decoded size."""
    out = dict(payload)
    content = out.pop("content_base64", None)
    if isinstance(content, str):
        stripped = "".join(content.split())
        out["content_bytes"] = len(stripped) * 3 // 4 - (len(stripped) - len(stripped.rstrip("=")))
    return out


def request_hash(payload: dict[str, Any]) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_key(key: str | None) -> str | None:
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_KEY_CHARS or not key.isprintable():
        raise InvalidInput(
            f"Idempotency-Key must be 1-{MAX_KEY_CHARS} printable characters (a UUID is a "
            "good choice)."
        )
    return key


class JobService:
    def __init__(
        self,
        store: JobStore,
        queue: JobQueue,
        validator: Validator,
        *,
        changes: Changes | None = None,
    ) -> None:
        self.store = store
        self.queue = queue
        self.changes = changes or Changes()
        self._validate = validator
        # Set by the runtime when this process runs workers: cancel reaches them at once.
        self.on_cancel_requested: Callable[[str], None] | None = None

    async def submit(
        self, request: JobRequest, *, idempotency_key: str | None = None
    ) -> tuple[Job, bool]:
        """The job and whether it is new. Not new: the same Idempotency-Key was used
        before, or (without a key) an identical request (same kind, source, collection and
        options) is still queued or running."""
        key = check_key(idempotency_key)
        payload = request.model_dump(mode="json")
        digest = request_hash(payload)
        if key is not None:
            found = await self.store.by_key(key)
            if found is not None:
                return self._same_request(key, digest, *found), False
        kind = JobKind(request.kind)
        # An assistant whose call timed out retries it: the same request while the first is
        # still queued or running gets that job, not a second crawl of the same site. The
        # lock closes the gap between looking and storing for requests in this process.
        # With a key the caller keeps its own idempotency: a new key is a new job.
        async with local_lock("submit", digest):
            twin = None if key is not None else await self.store.active_twin(kind, digest)
            if twin is not None:
                log.info("job %s: an identical request came again; answering with it", twin.job_id)
                return twin, False
            await self._validate(request)
            new = NewJob(kind, payload, public_request(payload), digest, key)
            try:
                job = await self.store.create(new)
            except DuplicateKey as dup:  # the same key submitted twice at the same moment
                return self._same_request(key or "", digest, dup.existing, dup.request_hash), False
        try:
            await self.queue.enqueue(job.job_id)
        except Exception as exc:
            # Accepted all the same: the job is stored, and the sweeper re-enqueues jobs
            # whose message never reached the queue.
            log.warning("job %s stored but not enqueued (%s); will retry", job.job_id, exc)
        metrics.WORKER_QUEUE_SIZE.inc()
        return job, True

    @staticmethod
    def _same_request(key: str, digest: str, existing: Job, existing_hash: str) -> Job:
        if existing_hash != digest:
            raise JobConflict(
                f"Idempotency-Key {key!r} was already used for another request (job "
                f"{existing.job_id}). Use a new key for new work, or repeat the same request "
                "to get that job."
            )
        return existing

    async def get(self, job_id: str) -> Job:
        job = await self.store.get(job_id)
        if job is None:
            raise JobNotFound(
                f"No job with id {job_id!r}. Job ids are the job_id returned when the job "
                "was submitted (GET /jobs lists recent jobs)."
            )
        return job

    async def wait(self, job_id: str, *, since: datetime, timeout: float) -> Job:  # noqa: ASYNC109
        """The job once it changed after ``since``, or as it is when ``timeout`` runs out."""
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout)
        while True:
            job = await self.get(job_id)
            remaining = deadline - loop.time()
            if job.updated_at > since or remaining <= 0:
                return job
            await self.changes.wait(min(POLL_SECONDS, remaining))

    async def list(
        self, *, status: JobStatus | None = None, limit: int = 20, offset: int = 0
    ) -> JobPage:
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE} (got {limit}).")
        if not 0 <= offset <= MAX_OFFSET:
            raise InvalidInput(f"offset must be between 0 and {MAX_OFFSET} (got {offset}).")
        # One extra row says whether another page follows.
        jobs = await self.store.list_jobs(status=status, limit=limit + 1, offset=offset)
        more = len(jobs) > limit
        return JobPage(
            jobs=jobs[:limit],
            limit=limit,
            offset=offset,
            next_offset=offset + limit if more else None,
        )

    async def cancel(self, job_id: str) -> Job:
        for _ in range(5):  # the state may move under us; each round re-reads it
            job = await self.get(job_id)
            if job.status is JobStatus.cancelled:
                return job
            if job.status in (JobStatus.succeeded, JobStatus.failed):
                raise JobConflict(
                    f"Job {job_id} already {job.status.value}; there is nothing to cancel."
                )
            if job.status is JobStatus.queued:
                if await self.store.cancel_queued(job_id):
                    metrics.JOBS_TOTAL.labels(job.kind.value, JobStatus.cancelled.value).inc()
                    return await self.get(job_id)
                continue
            if job.cancel_requested or await self.store.request_cancel(job_id):
                if self.on_cancel_requested is not None:
                    self.on_cancel_requested(job_id)
                return await self.get(job_id)
        return await self.get(job_id)

    async def counts(self) -> dict[JobStatus, int]:
        counts = await self.store.counts()
        metrics.observe_counts(counts)
        return counts

    async def refresh_gauges(self) -> None:
        """worker_queue_size / active_jobs / oldest_queued_job_age_seconds as of now, for a
        scrape (the sweeper's are up to 10 s old). A job store outage shows in /ready and
        the log, and as NaN gauges; the scrape still answers."""
        try:
            await self.counts()
            metrics.observe_oldest(await self.store.oldest_queued_since(), datetime.now(UTC))
        except Exception:
            metrics.forget_counts()
            log.warning("could not count jobs for /metrics", exc_info=True)
