"""What the core needs from the outside, as protocols: channels, applications, repositories.

Channels implement `CallChannel`; applications implement `Application`; the store implements the
repositories. The core depends only on these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from switchboard.core.models import (
    Call,
    CallState,
    Dialog,
    Direction,
    EndpointType,
    HangupDelivery,
    InboundAction,
    InboundTarget,
    PermissionStatus,
)
from switchboard.media.engine import LegSpec


@dataclass(frozen=True, slots=True)
class DialResult:
    peer_call_id: str | None
    """The channel's id for the placed call; None when the channel cannot tell whether the far end got
    the call (a request lost in flight): a later signal naming the call (`call_hint`) binds it."""


class CallChannel(Protocol):
    """Signalling toward one kind of endpoint (WhatsApp through Meta, SIP, WebRTC, ...)."""

    endpoint_type: EndpointType
    early_media: bool
    """Whether media may flow to an inbound caller before the call is answered (WhatsApp: no)."""

    def leg_spec(self, call: Call) -> LegSpec:
        """The media leg the call's far end needs (transport profile, codecs)."""

    async def prepare_outbound(self, call: Call) -> None:
        """Check and complete a call about to be placed: the channel names the account it goes out on
        (`call.sender_id`) and normalises `from_`/`to`; raises a `SwitchboardError` naming the field."""

    async def pre_answer(self, call: Call, sdp_answer: str) -> None: ...

    async def answer(self, call: Call, sdp_answer: str) -> None: ...

    async def reject(self, call: Call) -> None: ...

    async def hangup(self, call: Call) -> None: ...

    async def dial(self, call: Call, sdp_offer: str) -> DialResult: ...


@runtime_checkable
class RingsBack(Protocol):
    """A channel that can tell an inbound caller the call rings (SIP's 180) before it is answered."""

    async def ring(self, call: Call) -> None: ...


class Application(Protocol):
    """An application that takes calls handed to an inbound action (the Calls API, the IVR, ...)."""

    action: InboundAction

    async def refusal(self, target: InboundTarget) -> str | None:
        """Why a call cannot be handed to `target` (e.g. its configuration does not exist), or None."""


@dataclass(slots=True)
class PermissionRecord:
    """A WhatsApp user's call permission toward one sender, with the history that limits use."""

    sender_id: str
    user: str
    status: PermissionStatus = PermissionStatus.NO_PERMISSION
    expires_at: datetime | None = None
    requests: list[datetime] = field(default_factory=list)
    """When permission requests were sent (kept for 7 days)."""
    connected_calls: list[datetime] = field(default_factory=list)
    """When business-initiated calls connected (kept for 24 hours)."""
    unanswered_in_a_row: int = 0
    updated_at: datetime | None = None


class CallRepository(Protocol):
    async def save(self, call: Call) -> None: ...

    async def get(self, call_id: str) -> Call | None: ...

    async def find_by_peer_call_id(self, peer_call_id: str) -> Call | None: ...

    async def unfinished(self) -> Sequence[Call]:
        """This server's calls that never reached a final state (it stopped while they were live)."""

    async def adopt(self, node_id: str) -> Sequence[Call]:
        """Make this server the carrier of `node_id`'s unfinished calls (that node stopped) and return
        them; atomic, so of several servers adopting at once each call goes to one."""

    async def set_hangup_delivery(self, call_id: str, delivery: HangupDelivery, error: str | None) -> None:
        """Record whether the far end heard that the call ended."""

    async def list(
        self,
        *,
        active: bool | None = None,
        calls_configuration_id: str | None = None,
        state: CallState | None = None,
        direction: Direction | None = None,
        page: int = 0,
        size: int = 20,
    ) -> tuple[Sequence[Call], int]:
        """Calls newest first matching every filter given, with the total that match."""


class DialogRepository(Protocol):
    async def save(self, dialog: Dialog) -> None: ...

    async def get(self, dialog_id: str) -> Dialog | None: ...

    async def list(
        self, *, active: bool | None = None, page: int = 0, size: int = 20
    ) -> tuple[Sequence[Dialog], int]: ...


class PermissionRepository(Protocol):
    async def get(self, sender_id: str, user: str) -> PermissionRecord | None: ...

    async def save(self, record: PermissionRecord) -> None: ...


@dataclass(frozen=True, slots=True)
class ChannelRecord:
    """A document a channel keeps (a WhatsApp sender with its secrets, a SIP trunk): the channel owns
    its shape; the store keeps it as JSON under (kind, key)."""

    kind: str
    key: str
    data: Mapping[str, Any]


class ChannelRecords(Protocol):
    async def list(self, kind: str) -> Sequence[ChannelRecord]:
        """Every record of `kind`, oldest first."""

    async def get(self, kind: str, key: str) -> ChannelRecord | None: ...

    async def save(self, kind: str, key: str, data: Mapping[str, Any]) -> None: ...

    async def delete(self, kind: str, key: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class Job:
    """Durable work: done at least once, retried with backoff, across restarts."""

    id: int
    kind: str
    key: str
    payload: Mapping[str, Any]
    attempts: int
    created_at: datetime


class JobQueue(Protocol):
    async def enqueue(self, kind: str, key: str, payload: Mapping[str, Any], *, at: datetime) -> None:
        """Add a job due at `at`; a job of the same kind and key that is not finished is kept as is."""

    async def submit(
        self, kind: str, key: str, payload: Mapping[str, Any], *, at: datetime, lease: timedelta
    ) -> int | None:
        """Add a job already leased to this process (it runs it at once); its id, or None when a job
        of that kind and key exists (a repeat)."""

    async def prune(self, older_than: datetime) -> int:
        """Forget finished jobs finished before `older_than`; returns how many."""

    async def claim_due(self, now: datetime, *, limit: int, lease: timedelta) -> Sequence[Job]:
        """Jobs due by `now`, leased to this process for `lease` (others skip them meanwhile)."""

    async def next_due(self) -> datetime | None:
        """When the earliest unfinished job is due (a leased one: when its lease runs out)."""

    async def release_leases(self) -> None:
        """Free the leases this process holds (it is starting, so nothing of it runs any more)."""

    async def hand_over(self, job_id: int, node_id: str) -> None:
        """Leave the job to `node_id` alone (it carries what the job is about); due at once there."""

    async def complete(self, job_id: int) -> None: ...

    async def retry(self, job_id: int, *, at: datetime, error: str) -> None: ...

    async def give_up(self, job_id: int, *, error: str) -> None: ...
