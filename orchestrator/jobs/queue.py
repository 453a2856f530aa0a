"""The job queue: taskiq, in-process by default, Redis streams with SHIELD_QUEUE_URL.

A message carries only a job id; the job store says what the job is and whether it still
needs running, so a message delivered twice or late does no harm (see store.claim).
taskiq and taskiq_redis are imported here, lazily: nothing on the MCP server's start-up
path imports this module.

Redis down: the job is already in the job store when it is enqueued, so an accept answers
202 all the same. The enqueue gives up after ``ENQUEUE_TIMEOUT``; from then on the queue is
known to be down and accepts do not try Redis at all (they stay fast) until the sweeper
reaches Redis again, enqueues the jobs that missed their message (``flush_pending``) and
clears the mark. The job store's compare-and-set claim makes a second message harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from knowledge.errors import DependencyUnavailable

log = logging.getLogger(__name__)

TASK_NAME = "shield.run_job"
DEFAULT_QUEUE_NAME = "shield-jobs"
ENQUEUE_TIMEOUT = 1.5  # seconds an accept may spend on Redis
CONNECT_TIMEOUT = 2.0  # seconds to open a connection to Redis
SOCKET_TIMEOUT = 10.0  # seconds for one Redis answer; above the receiver's 1 s block
# Without a sweeper noticing Redis is back, accepts try it again after this long.
DOWN_SECONDS = 30.0


class QueueUnavailable(DependencyUnavailable):
    """Redis could not take the message; the job stays queued in the job store."""


Handler = Callable[[str], Awaitable[None]]


class JobQueue:
    """One taskiq broker and the one task it knows: run the job with this id."""

    def __init__(
        self,
        url: str | None = None,
        *,
        queue_name: str = DEFAULT_QUEUE_NAME,
        lease_seconds: float = 30.0,
    ) -> None:
        self.url = url  # None: in-process; redis://...: a stream shared with other workers
        self.queue_name = queue_name
        self.lease_seconds = lease_seconds
        self._handler: Handler | None = None
        self._broker: Any = None
        self._task: Any = None
        self._started = False
        # Redis failed an enqueue at this monotonic time; None while it is believed up.
        self._down_since: float | None = None
        # Jobs stored but not enqueued (Redis down), in order: enqueued when it is back.
        self._pending: dict[str, None] = {}

    @property
    def distributed(self) -> bool:
        return self.url is not None

    @property
    def consumer_group(self) -> str:
        return f"{self.queue_name}:workers"

    def _build(self) -> None:
        if self._broker is not None:
            return
        if self.url is None:
            from taskiq import InMemoryBroker

            # We keep no results (the job store has them): store the minimum taskiq allows.
            broker: Any = InMemoryBroker(max_stored_results=1, await_inplace=False)
        else:
            from taskiq_redis import RedisStreamBroker

            broker = RedisStreamBroker(
                self.url,
                queue_name=self.queue_name,
                consumer_group_name=self.consumer_group,
                # Read one message at a time: a busy worker must not hoard messages that an
                # idle one could run.
                xread_count=1,
                xread_block=1000,
                # A message whose consumer died is re-delivered by the lease sweeper, not by
                # Redis; keep Redis' own re-claim as a late safety net.
                idle_timeout=int(max(self.lease_seconds * 4, 60) * 1000),
                # A worker killed while holding the autoclaim lock must not block the others.
                unacknowledged_lock_timeout=10.0,
                # A group made after Redis lost its data (a restart without persistence)
                # reads the stream from its start: a message enqueued by the sweeper just
                # before a worker made the group again is not skipped.
                consumer_id="0",
                # A Redis that hangs (stopped, partitioned) fails calls instead of holding
                # them for ever.
                socket_connect_timeout=CONNECT_TIMEOUT,
                socket_timeout=SOCKET_TIMEOUT,
            )

        async def run_job(job_id: str) -> None:  # taskiq needs a function, not a method
            await self._dispatch(job_id)

        self._task = broker.register_task(run_job, task_name=TASK_NAME)
        self._broker = broker

    async def _dispatch(self, job_id: str) -> None:
        if self._handler is None:
            log.error("job %s delivered to a process that runs no workers; ignored", job_id)
            return
        await self._handler(job_id)

    @property
    def broker(self) -> Any:
        self._build()
        return self._broker

    def set_handler(self, handler: Handler | None) -> None:
        self._handler = handler

    async def startup(self) -> None:
        if self._started:
            return
        try:
            await self.broker.startup()
        except Exception as exc:
            if self.url is None:
                raise
            # Start anyway: jobs are still accepted (stored), readiness says what is wrong,
            # and the receiver and the sweeper retry until Redis answers.
            log.warning("queue unreachable at start-up (%s); retrying in the background", exc)
        self._started = True

    async def shutdown(self) -> None:
        if self._started:
            self._started = False
            await self._broker.shutdown()

    @property
    def known_down(self) -> bool:
        """An enqueue failed and no contact with Redis has succeeded since."""
        if self._down_since is None:
            return False
        if time.monotonic() - self._down_since > DOWN_SECONDS:
            self._down_since = None  # nobody told us it is back: try again
            return False
        return True

    def pending(self) -> list[str]:
        return list(self._pending)

    async def enqueue(self, job_id: str) -> None:
        """Send the job's message; QueueUnavailable (promptly) when Redis cannot take it.

        The job id is then kept for ``flush_pending``; the sweeper also re-enqueues any
        queued job whose message was lost, so a crash of this process loses nothing.
        """
        if self.url is None and self._handler is None:
            return  # no worker in this process: the next start with workers enqueues it
        self._build()
        if self.url is None:
            await self._task.kiq(job_id)
            return
        if self.known_down:
            self._pending[job_id] = None
            raise QueueUnavailable(
                "The job queue (Redis) is down; the job is stored and is queued as soon as "
                "it is back."
            )
        try:
            await asyncio.wait_for(self._task.kiq(job_id), ENQUEUE_TIMEOUT)
        except Exception as exc:
            self._down_since = time.monotonic()
            self._pending[job_id] = None
            raise QueueUnavailable(
                f"The job queue (Redis) did not take the job ({type(exc).__name__}); the job "
                "is stored and is queued as soon as Redis answers again."
            ) from exc
        self._pending.pop(job_id, None)

    def reachable(self) -> None:
        """Redis answered (the sweeper's check): accepts may use it again."""
        self._down_since = None

    async def flush_pending(self) -> list[str]:
        """Enqueue the jobs that missed their message; returns those now enqueued. Stops at
        the first failure (Redis went down again): the rest wait for the next flush."""
        done: list[str] = []
        for job_id in list(self._pending):
            try:
                await self.enqueue(job_id)
            except QueueUnavailable:
                break
            done.append(job_id)
        return done

    async def ping(self) -> None:
        """Raises when the queue cannot be reached (within CONNECT_TIMEOUT)."""
        if self.url is None:
            return
        from redis.asyncio import Redis

        async with Redis(connection_pool=self.broker.connection_pool) as conn:
            await asyncio.wait_for(conn.ping(), CONNECT_TIMEOUT)

    async def all_delivered(self) -> bool:
        """True when no message waits undelivered: a job still queued then lost its message.

        The in-process queue loses nothing while the process lives (its messages are tasks);
        start-up recovery covers a restart.
        """
        if self.url is None:
            return False
        from redis.asyncio import Redis
        from redis.exceptions import ResponseError

        async with Redis(connection_pool=self.broker.connection_pool) as conn:
            try:
                groups = await conn.xinfo_groups(self.queue_name)
            except ResponseError:  # no stream: nothing was ever enqueued, or Redis lost it
                return True
        for group in groups:
            name = group.get("name")
            if isinstance(name, bytes):
                name = name.decode()
            if name == self.consumer_group:
                lag = group.get("lag")
                return lag is None or int(lag) == 0
        return True

    async def listen(self, concurrency: int, stop: asyncio.Event, wait_seconds: float) -> None:
        """Receive messages until ``stop`` is set (Redis only; the in-process queue pushes).

        At most ``concurrency`` messages are taken at once, so the others stay in Redis for
        other workers. A broken connection restarts the receiver after a pause.
        """
        if self.url is None:
            return
        from taskiq.acks import AcknowledgeType
        from taskiq.receiver import Receiver

        self.broker.is_worker_process = True
        while not stop.is_set():
            receiver = Receiver(
                broker=self.broker,
                run_startup=False,
                max_async_tasks=concurrency,
                max_prefetch=0,
                # Acknowledge at once: the job store's lease, not Redis, brings back the jobs
                # of a dead worker (a pending message would be re-delivered only much later).
                ack_type=AcknowledgeType.WHEN_RECEIVED,
                wait_tasks_timeout=wait_seconds,
            )
            try:
                await receiver.listen(stop)
            except Exception as exc:
                log.warning("queue receiver failed (%s); reconnecting in 1 s", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)
                with contextlib.suppress(Exception):  # (re)declares the consumer group
                    await self.broker.startup()
            else:
                return
