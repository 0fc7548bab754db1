"""Telling the far end that a call ended, until it has heard it.

When a channel cannot deliver a hang-up at once (Meta's Graph API down, a crash before it was sent), the
call still ends here; the hang-up becomes a durable job, retried with backoff, and the call's record says
whether it got through (`hangup_delivery`).
"""

from __future__ import annotations

from switchboard.core.errors import ChannelError
from switchboard.core.jobs import JobRunner, PermanentJobError
from switchboard.core.models import Call, EndpointType, HangupDelivery
from switchboard.core.ports import CallChannel, CallRepository, Job

HANGUP_KIND = "call.hangup_far_end"


class FarEndHangups:
    kind = HANGUP_KIND

    def __init__(
        self, calls: CallRepository, channels: dict[EndpointType, CallChannel], jobs: JobRunner
    ) -> None:
        self._calls = calls
        self._channels = channels
        self._jobs = jobs

    async def request(self, call: Call, *, reject: bool, error: str) -> None:
        """Hang up (or reject) `call`'s far end later, durably; the caller saves `call`."""
        call.hangup_delivery = HangupDelivery.PENDING
        call.hangup_delivery_error = error
        await self._jobs.enqueue(self.kind, call.id, {"reject": reject})

    async def run(self, job: Job) -> None:
        call = await self._calls.get(job.key)
        if call is None:
            raise PermanentJobError(f"call {job.key!r} no longer exists")
        channel = self._channels.get(call.endpoint.type)
        if channel is None:
            raise PermanentJobError(f"no channel for {call.endpoint.type} calls")
        try:
            if job.payload.get("reject"):
                await channel.reject(call)
            else:
                await channel.hangup(call)
        except ChannelError as exc:
            if not exc.retryable:
                raise PermanentJobError(f"the far end refused the hang-up: {exc}") from exc
            raise
        await self._calls.set_hangup_delivery(call.id, HangupDelivery.DELIVERED, None)

    async def gave_up(self, job: Job, error: str) -> None:
        await self._calls.set_hangup_delivery(
            job.key, HangupDelivery.FAILED, f"the far end was never told that the call ended: {error}"
        )
