"""The job queue: taskiq, in-process by default, Redis streams with SHIELD_QUEUE_URL.

A message carries only a job id; the job store says what the job is and whether it still
needs running, so a message delivered twice or late does no harm (see store.claim).
taskiq and taskiq_redis are imported here, lazily: nothing on the MCP server's start-up
path imports this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

TASK_NAME = "shield.run_job"
DEFAULT_QUEUE_NAME = "shield-jobs"

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

    async def enqueue(self, job_id: str) -> None:
        if self.url is None and self._handler is None:
            return  # no worker in this process: the next start with workers enqueues it
        self._build()
        await self._task.kiq(job_id)

    async def ping(self) -> None:
        """Raises when the queue cannot be reached."""
        if self.url is None:
            return
        from redis.asyncio import Redis

        async with Redis(connection_pool=self.broker.connection_pool) as conn:
            await conn.ping()

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
