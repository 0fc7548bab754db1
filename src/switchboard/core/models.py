"""Calls, dialogs and endpoints: the core's data model, named as in Infobip's Calls API."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


class CallState(enum.StrEnum):
    CALLING = "CALLING"
    RINGING = "RINGING"
    PRE_ESTABLISHED = "PRE_ESTABLISHED"
    ESTABLISHED = "ESTABLISHED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    NO_ANSWER = "NO_ANSWER"
    BUSY = "BUSY"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES


FINAL_STATES = frozenset(
    {CallState.FINISHED, CallState.FAILED, CallState.CANCELLED, CallState.NO_ANSWER, CallState.BUSY}
)


class Direction(enum.StrEnum):
    INBOUND = "INBOUND"
    OUTBOUND = "OUTBOUND"


class EndpointType(enum.StrEnum):
    PHONE = "PHONE"
    SIP = "SIP"
    WEBRTC = "WEBRTC"
    WHATSAPP = "WHATSAPP"
    VIBER = "VIBER"
    WEBSOCKET = "WEBSOCKET"


class HangupSource(enum.StrEnum):
    ENDPOINT = "ENDPOINT"
    API = "API"
    PLATFORM = "PLATFORM"


class ErrorCode(enum.StrEnum):
    """Infobip's call error codes (`callLog.errorCode.name`)."""

    NORMAL_HANGUP = "NORMAL_HANGUP"
    MACHINE_DETECTED = "MACHINE_DETECTED"
    NO_ANSWER = "NO_ANSWER"
    BUSY = "BUSY"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"
    FORBIDDEN = "FORBIDDEN"
    DESTINATION_NOT_FOUND = "DESTINATION_NOT_FOUND"
    DESTINATION_UNAVAILABLE = "DESTINATION_UNAVAILABLE"
    INVALID_DESTINATION = "INVALID_DESTINATION"
    INVALID_REQUEST = "INVALID_REQUEST"
    REQUEST_TIMEOUT = "REQUEST_TIMEOUT"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    MEDIA_FAILURE = "MEDIA_FAILURE"


ERROR_IDS: dict[ErrorCode, int] = {code: 10000 + i for i, code in enumerate(ErrorCode)}


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A call's far end. `phone_number` for PHONE/WHATSAPP/VIBER, `identity` for WEBRTC, ..."""

    type: EndpointType
    phone_number: str | None = None
    username: str | None = None
    sip_trunk_id: str | None = None
    identity: str | None = None
    display_name: str | None = None

    @property
    def address(self) -> str:
        return self.phone_number or self.identity or self.username or ""


class HangupDelivery(enum.StrEnum):
    """Whether the far end was told that the call ended (it is retried until it gets through)."""

    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"


@dataclass(frozen=True, slots=True)
class CallError:
    code: ErrorCode
    description: str

    @property
    def id(self) -> int:
        return ERROR_IDS[self.code]


@dataclass(slots=True)
class Call:
    """One call leg as the platform sees it. Mutated only through `core.state.transition`."""

    id: str
    endpoint: Endpoint
    direction: Direction
    from_: str
    to: str
    state: CallState = CallState.CALLING
    calls_configuration_id: str | None = None
    """The Calls API application that has the call (Infobip's field), while it has it."""
    application_id: str | None = None
    targets: list[InboundTarget] = field(default_factory=list)
    """The applications the call was handed to, in order; the last one has it now."""
    sender_id: str | None = None
    """The channel account the call is on (WhatsApp: the sender's phone_number_id)."""
    peer_call_id: str | None = None
    """The channel's own id for the call (Meta's `wacid.*`)."""
    external_id: str | None = None
    """The application's own id for the call (Infobip's `externalId`)."""
    custom_data: dict[str, str] = field(default_factory=dict)
    sip_headers: dict[str, str] = field(default_factory=dict)
    """A SIP call's `X-` headers: received on the inbound INVITE, or to send on the outbound one."""
    parent_call_id: str | None = None
    dialog_id: str | None = None
    start_time: datetime | None = None
    ringing_time: datetime | None = None
    answer_time: datetime | None = None
    end_time: datetime | None = None
    hangup_source: HangupSource | None = None
    error: CallError | None = None
    media: dict[str, object] = field(default_factory=dict)
    """Media diagnostics of the call's leg, as last reported by the media engine."""
    hangup_delivery: HangupDelivery | None = None
    """Set when telling the far end that the call ended did not succeed at once."""
    hangup_delivery_error: str | None = None

    @property
    def target(self) -> InboundTarget | None:
        return self.targets[-1] if self.targets else None

    @property
    def duration(self) -> int:
        """Whole seconds from answer to end (Infobip's `callLog.duration`)."""
        if self.answer_time is None:
            return 0
        end = self.end_time or self.answer_time
        return max(0, int((end - self.answer_time).total_seconds()))

    @property
    def ring_duration(self) -> int:
        if self.start_time is None:
            return 0
        end = self.answer_time or self.end_time or self.start_time
        return max(0, int((end - self.start_time).total_seconds()))


class DialogState(enum.StrEnum):
    CREATED = "CREATED"
    PRE_ESTABLISHED = "PRE_ESTABLISHED"
    ESTABLISHED = "ESTABLISHED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    TRANSFERRING = "TRANSFERRING"


@dataclass(slots=True)
class Dialog:
    """Two calls bridged: the parent (usually inbound) and the child."""

    id: str
    parent_call_id: str
    child_call_id: str
    state: DialogState = DialogState.CREATED
    calls_configuration_id: str | None = None
    start_time: datetime | None = None
    establish_time: datetime | None = None
    end_time: datetime | None = None
    error: CallError | None = None

    @property
    def duration(self) -> int:
        if self.establish_time is None or self.end_time is None:
            return 0
        return max(0, int((self.end_time - self.establish_time).total_seconds()))


class PermissionStatus(enum.StrEnum):
    """A WhatsApp user's call permission for one sender (Meta's names, upper-cased as Infobip's)."""

    NO_PERMISSION = "NO_PERMISSION"
    TEMPORARY = "TEMPORARY"
    PERMANENT = "PERMANENT"


class InboundAction(enum.StrEnum):
    """Which kind of application handles a call: what a channel resolves the called number to."""

    SUBSCRIPTION = "SUBSCRIPTION"
    """A Calls API application (REST + webhooks); the id is its calls configuration."""
    CONTACT_CENTER = "CONTACT_CENTER"
    """The contact centre; the id is a queue."""
    IVR_SCENARIO = "IVR_SCENARIO"
    """An IVR scenario; the id is the scenario."""
    FLOW = "FLOW"
    """A visually built IVR flow; the id is the flow."""
    CALL_ROUTING = "CALL_ROUTING"
    """Call routing; the id is a route, or None for every route in order."""


@dataclass(frozen=True, slots=True)
class InboundTarget:
    """The application a call is handed to, and what it was given (a configuration, scenario, ...)."""

    action: InboundAction
    id: str | None = None

    def __str__(self) -> str:
        return f"{self.action.value}:{self.id}" if self.id else self.action.value
