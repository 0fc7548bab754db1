"""Durable work the core must get done even across a crash, run from a `JobQueue`.

A handler's `run` raising retries the job with exponential backoff; `PermanentJobError` or a job older
than `give_up_after` ends it, and the handler hears `gave_up`; `JobElsewhere` hands it to the node that
must run it. Jobs run concurrently, each at least once (a process that dies mid-job leaves it to be run
again once its lease runs out). Other nodes add jobs too, so the queue is looked at every `poll_s`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from datetime import timedelta
from typing import Protocol

from switchboard.core.clock import Clock
from switchboard.core.ports import Job, JobQueue
from switchboard.errors import SwitchboardError

log = logging.getLogger(__name__)

PRUNE_EVERY_S = 3600.0


class PermanentJobError(SwitchboardError):
    """A job that can never succeed (e.g. the far end refused it for good)."""


class JobElsewhere(SwitchboardError):
    """The job is about something another node carries (a call): that node must run it."""

    def __init__(self, node_id: str) -> None:
        super().__init__(f"the job belongs to node {node_id}")
        self.node_id = node_id


class JobHandler(Protocol):
    kind: str

    async def run(self, job: Job) -> None:
        """Do the job; raise to have it retried."""

    async def gave_up(self, job: Job, error: str) -> None:
        """The job will not be tried again."""


class JobRunner:
    def __init__(
        self,
        queue: JobQueue,
        clock: Clock,
        *,
        base_delay_s: float = 1.0,
        max_delay_s: float = 60.0,
        give_up_after: timedelta = timedelta(hours=1),
        lease: timedelta = timedelta(minutes=2),
        batch: int = 50,
        concurrency: int = 64,
        keep_finished: timedelta = timedelta(days=7),
        poll_s: float = 1.0,
    ) -> None:
        self._queue = queue
        self._clock = clock
        self._base = base_delay_s
        self._max = max_delay_s
        self._give_up_after = give_up_after
        self._lease = lease
        self._batch = batch
        self._handlers: dict[str, JobHandler] = {}
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(concurrency)
        self._keep_finished = keep_finished
        self._poll_s = poll_s
        self._tasks: asyncio.TaskGroup | None = None

    def register(self, handler: JobHandler) -> None:
        self._handlers[handler.kind] = handler

    async def enqueue(self, kind: str, key: str, payload: dict[str, object]) -> None:
        """Store a job (it survives a crash) and have it run at once."""
        await self._queue.enqueue(kind, key, payload, at=self._clock.now())
        self._wake.set()

    async def submit(self, kind: str, key: str, payload: dict[str, object]) -> bool:
        """Store a job and run it at once (it is run again after a crash, until done). False when a job
        of that kind and key exists already: a repeat, stored and run before."""
        now = self._clock.now()
        job_id = await self._queue.submit(kind, key, payload, at=now, lease=self._lease)
        if job_id is None:
            return False
        if self._tasks is not None:
            self._tasks.create_task(self._run_one(Job(job_id, kind, key, payload, 0, now)))
        return True

    async def run(self) -> None:
        """Run due jobs until cancelled; the composition root owns this task."""
        await self._queue.release_leases()
        async with asyncio.TaskGroup() as tasks:
            self._tasks = tasks
            try:
                tasks.create_task(self._prune_hourly())
                await self._run_due_forever()
            finally:
                self._tasks = None

    async def _prune_hourly(self) -> None:
        while True:
            try:
                removed = await self._queue.prune(self._clock.now() - self._keep_finished)
                if removed:
                    log.info("forgot %d jobs finished more than %s ago", removed, self._keep_finished)
            except Exception:
                log.exception("pruning finished jobs failed")
            await asyncio.sleep(PRUNE_EVERY_S)

    async def _run_due_forever(self) -> None:
        while True:
            self._wake.clear()
            ran = await self.run_due()
            if ran:
                continue
            due = await self._queue.next_due()
            delay = self._poll_s
            if due is not None:
                delay = min(delay, max(0.0, (due - self._clock.now()).total_seconds()))
            wakeup = self._clock.call_at(self._clock.monotonic() + delay, self._wake.set)
            try:
                await self._wake.wait()
            finally:
                wakeup.cancel()

    async def run_due(self) -> int:
        """Run the jobs due now, concurrently; returns how many ran."""
        jobs = await self._queue.claim_due(self._clock.now(), limit=self._batch, lease=self._lease)
        async with asyncio.TaskGroup() as tasks:
            for job in jobs:
                tasks.create_task(self._run_one(job))
        return len(jobs)

    async def drain(self, within_s: float) -> None:
        """Run due jobs until none is left or `within_s` has passed (e.g. while shutting down)."""
        try:
            async with asyncio.timeout(within_s):
                while await self.run_due():
                    pass
        except TimeoutError:
            log.warning("jobs still pending after %.0f s; they run again at the next start", within_s)

    async def _run_one(self, job: Job) -> None:
        async with self._slots:
            for tries in itertools.count():
                try:
                    await self._attempt(job)
                    return
                except Exception as exc:
                    # Its outcome could not be stored (the database failing). It is still leased to
                    # this process: run it again here (processing is idempotent), not after the lease.
                    delay = min(self._max, self._base * 2**tries)
                    log.warning("job %s %s: storing its outcome failed (%s)", job.kind, job.key, exc)
                    await asyncio.sleep(delay)

    async def _attempt(self, job: Job) -> None:
        handler = self._handlers.get(job.kind)
        if handler is None:
            await self._queue.give_up(job.id, error=f"no handler for jobs of kind {job.kind}")
            return
        try:
            await handler.run(job)
        except JobElsewhere as exc:
            log.info("job %s %s handed to node %s", job.kind, job.key, exc.node_id)
            await self._queue.hand_over(job.id, exc.node_id)
        except PermanentJobError as exc:
            await self._give_up(handler, job, str(exc))
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            if self._clock.now() - job.created_at >= self._give_up_after:
                await self._give_up(handler, job, error)
            else:
                delay = min(self._max, self._base * 2**job.attempts)
                at = self._clock.now() + timedelta(seconds=delay)
                log.info("job %s %s failed (attempt %d): %s", job.kind, job.key, job.attempts + 1, error)
                await self._queue.retry(job.id, at=at, error=error)
        else:
            await self._queue.complete(job.id)

    async def _give_up(self, handler: JobHandler, job: Job, error: str) -> None:
        log.error("job %s %s given up after %d attempts: %s", job.kind, job.key, job.attempts + 1, error)
        await self._queue.give_up(job.id, error=error)
        await handler.gave_up(job, error)
