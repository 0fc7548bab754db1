"""Shared state of the Meta emulator: business numbers, permissions, faults, recorded requests.

Wire formats follow Meta's Cloud API calling documentation (the Graph API error shape, call actions,
call permissions).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from ._user import WhatsAppUser
    from ._webhooks import WebhookSender

PermissionStatus = Literal["no_permission", "temporary", "permanent"]

TEMPORARY_PERMISSION_SECONDS = 7 * 24 * 3600
DAY = 24 * 3600
WEEK = 7 * DAY
REQUESTS_PER_DAY = 1
REQUESTS_PER_WEEK = 2
CONNECTED_BUSINESS_CALLS_PER_DAY = 100


def new_fbtrace_id() -> str:
    return secrets.token_urlsafe(8)


def new_call_id() -> str:
    """A Meta-looking call id: `wacid.` + base64url text."""
    return "wacid." + secrets.token_urlsafe(24)


def new_message_id() -> str:
    return "wamid." + secrets.token_urlsafe(32)


class GraphError(Exception):
    """An error answered in Meta's Graph API error shape (reference §2)."""

    def __init__(
        self,
        http_status: int,
        code: int,
        message: str,
        *,
        error_subcode: int | None = None,
        details: str | None = None,
        error_type: str = "OAuthException",
    ) -> None:
        if code >= 130000 and not message.startswith("("):
            message = f"(#{code}) {message}"
        if code >= 130000 and error_subcode is None:
            error_subcode = code  # calling errors: the brief's shape always carries a subcode
        if code >= 130000 and details is None:
            details = message
        super().__init__(message)
        self.http_status = http_status
        self.code = code
        self.message = message
        self.error_subcode = error_subcode
        self.details = details
        self.error_type = error_type

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "message": self.message,
            "type": self.error_type,
            "code": self.code,
            "fbtrace_id": new_fbtrace_id(),
        }
        if self.error_subcode is not None:
            error["error_subcode"] = self.error_subcode
        if self.details is not None:
            error["error_data"] = {"messaging_product": "whatsapp", "details": self.details}
        return {"error": error}


def invalid_parameter(details: str) -> GraphError:
    return GraphError(400, 100, "(#100) Invalid parameter", details=details)


@dataclass(frozen=True)
class BusinessNumber:
    phone_number_id: str
    display_phone_number: str
    waba_id: str
    access_token: str
    app_secret: str


@dataclass
class Fault:
    kind: Literal["fail", "hang"]
    status: int = 500
    seconds: float = 0.0


class Faults:
    """Scripted failures: the next N requests of an action fail or hang.

    Action names are the Graph call actions (`connect`, `pre_accept`, `accept`, `reject`, `terminate`),
    `messages` (any POST /messages) and `call_permissions` (GET).
    """

    def __init__(self) -> None:
        self._queued: dict[str, list[Fault]] = {}

    def fail_next(self, action: str, *, status: int = 500, count: int = 1) -> None:
        self._queued.setdefault(action, []).extend(Fault("fail", status=status) for _ in range(count))

    def hang_next(self, action: str, seconds: float, *, count: int = 1) -> None:
        self._queued.setdefault(action, []).extend(Fault("hang", seconds=seconds) for _ in range(count))

    def clear(self) -> None:
        self._queued.clear()

    def take(self, action: str) -> Fault | None:
        queue = self._queued.get(action)
        return queue.pop(0) if queue else None


@dataclass
class PermissionRecord:
    """The call permission a user gave one business number (reference §5)."""

    status: PermissionStatus = "no_permission"
    expiration_time: int | None = None
    request_times: list[float] = field(default_factory=list)
    connected_call_times: list[float] = field(default_factory=list)
    last_request_message_id: str | None = None

    def current_status(self, now: float) -> PermissionStatus:
        if self.status == "temporary" and self.expiration_time is not None and now >= self.expiration_time:
            self.status = "no_permission"
            self.expiration_time = None
        return self.status

    def grant(self, *, permanent: bool = False, now: float | None = None) -> None:
        now = time.time() if now is None else now
        if permanent:
            self.status, self.expiration_time = "permanent", None
        else:
            self.status = "temporary"
            self.expiration_time = int(now) + TEMPORARY_PERMISSION_SECONDS

    def revoke(self) -> None:
        self.status, self.expiration_time = "no_permission", None

    def requests_in(self, window: float, now: float) -> int:
        return sum(1 for t in self.request_times if now - t < window)

    def can_request(self, now: float) -> bool:
        return (
            self.current_status(now) != "permanent"
            and self.requests_in(DAY, now) < REQUESTS_PER_DAY
            and self.requests_in(WEEK, now) < REQUESTS_PER_WEEK
        )

    def connected_calls_today(self, now: float) -> int:
        return sum(1 for t in self.connected_call_times if now - t < DAY)

    def can_call(self, now: float) -> bool:
        return (
            self.current_status(now) != "no_permission"
            and self.connected_calls_today(now) < CONNECTED_BUSINESS_CALLS_PER_DAY
        )

    def document(self, now: float) -> dict[str, Any]:
        """The body of `GET /{PHONE_NUMBER_ID}/call_permissions?user_wa_id=` (reference §5)."""
        status = self.current_status(now)
        permission: dict[str, Any] = {"status": status}
        if status == "temporary" and self.expiration_time is not None:
            permission["expiration_time"] = self.expiration_time
        day_usage = self.requests_in(DAY, now)
        week_usage = self.requests_in(WEEK, now)
        calls_usage = self.connected_calls_today(now)
        start_call_limit: dict[str, Any] = {
            "time_period": "PT24H",
            "max_allowed": CONNECTED_BUSINESS_CALLS_PER_DAY,
            "current_usage": calls_usage,
        }
        if calls_usage >= CONNECTED_BUSINESS_CALLS_PER_DAY:
            start_call_limit["limit_expiration_time"] = int(
                min(t for t in self.connected_call_times if now - t < DAY) + DAY
            )
        return {
            "messaging_product": "whatsapp",
            "permission": permission,
            "actions": [
                {
                    "action_name": "send_call_permission_request",
                    "can_perform_action": self.can_request(now),
                    "limits": [
                        {
                            "time_period": "PT24H",
                            "max_allowed": REQUESTS_PER_DAY,
                            "current_usage": day_usage,
                        },
                        {
                            "time_period": "P7D",
                            "max_allowed": REQUESTS_PER_WEEK,
                            "current_usage": week_usage,
                        },
                    ],
                },
                {
                    "action_name": "start_call",
                    "can_perform_action": self.can_call(now),
                    "limits": [start_call_limit],
                },
            ],
        }


class EmulatedCall(Protocol):
    """What the Graph API needs of a call, whichever peer plays the user (aiortc or a browser)."""

    call_id: str
    phone_number_id: str

    @property
    def direction(self) -> str: ...

    def record_action(self, action: str, body: dict[str, Any]) -> None: ...

    async def graph_pre_accept(self, sdp: str) -> None: ...

    async def graph_accept(self, sdp: str, biz_opaque_callback_data: str | None) -> None: ...

    async def graph_reject(self) -> None: ...

    async def graph_terminate(self) -> None: ...


@dataclass
class RecordedRequest:
    method: str
    path: str
    json: Any

    def __iter__(self) -> Any:  # unpacks as (method, path, json)
        return iter((self.method, self.path, self.json))


class EmulatorState:
    """Everything the Graph API app and the emulated users read and change; owned by `MetaEmulator`.

    Timeouts (seconds): `accept_timeout` for the business to accept a user-initiated call,
    `ring_timeout` for an unanswered business-initiated call, `connect_timeout` for ICE + DTLS.
    """

    def __init__(
        self,
        webhooks: WebhookSender,
        *,
        media_addresses: tuple[str, ...] = ("127.0.0.1",),
        recording_dir: Path,
        clock: Callable[[], float] = time.time,
        accept_timeout: float = 60.0,
        ring_timeout: float = 30.0,
        connect_timeout: float = 20.0,
    ) -> None:
        self.webhooks = webhooks
        self.media_addresses = media_addresses
        self.recording_dir = recording_dir
        self.clock = clock
        self.accept_timeout = accept_timeout
        self.ring_timeout = ring_timeout
        self.connect_timeout = connect_timeout
        self.users: dict[str, WhatsAppUser] = {}
        self.numbers: dict[str, BusinessNumber] = {}
        self.requests: list[RecordedRequest] = []
        self.faults = Faults()
        self.permissions: dict[tuple[str, str], PermissionRecord] = {}
        self.calls: dict[str, EmulatedCall] = {}

    def add_number(self, number: BusinessNumber) -> None:
        self.numbers[number.phone_number_id] = number

    def permission(self, phone_number_id: str, wa_id: str) -> PermissionRecord:
        return self.permissions.setdefault((phone_number_id, wa_id), PermissionRecord())
