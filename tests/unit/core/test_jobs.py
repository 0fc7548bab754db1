"""The job runner when the outcome of a job cannot be stored (the database failing for a while)."""

from __future__ import annotations

import asyncio

from support.fakes import InMemoryJobQueue
from switchboard.core.clock import ManualClock
from switchboard.core.jobs import JobRunner
from switchboard.core.ports import Job


class FlakyCompletions(InMemoryJobQueue):
    """Storing that a job is done fails `failures` times."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def complete(self, job_id: int) -> None:
        if self.failures:
            self.failures -= 1
            raise OSError("database or disk is full")
        await super().complete(job_id)


class Counting:
    kind = "test"

    def __init__(self) -> None:
        self.runs: list[str] = []

    async def run(self, job: Job) -> None:
        self.runs.append(job.key)

    async def gave_up(self, job: Job, error: str) -> None:
        raise AssertionError(f"gave up {job.key}: {error}")


async def test_a_job_whose_outcome_cannot_be_stored_runs_again_until_it_is() -> None:
    queue = FlakyCompletions(failures=2)
    runner = JobRunner(queue, ManualClock(), base_delay_s=0.001, max_delay_s=0.001)
    handler = Counting()
    runner.register(handler)
    running = asyncio.create_task(runner.run())
    try:
        await asyncio.sleep(0)
        assert await runner.submit("test", "k1", {"n": 1})
        async with asyncio.timeout(5):
            while queue.jobs[1]["state"] != "done":
                await asyncio.sleep(0.001)
        assert handler.runs == ["k1", "k1", "k1"], "processing is idempotent: run again, not lost"
        assert not running.done(), "the runner stopped"
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
