"""Typed errors of the core; the API edge renders each in Infobip's error shape."""

from __future__ import annotations

from switchboard.errors import MediaError, SwitchboardError

__all__ = [
    "CallNotFound",
    "ChannelError",
    "DialogNotFound",
    "InvalidCallState",
    "MediaError",
    "NoCallPermission",
    "NotFound",
    "PolicyViolation",
    "PstnForbidden",
    "SwitchboardError",
    "UnsupportedEndpoint",
]


class NotFound(SwitchboardError):
    status_hint = 404


class CallNotFound(NotFound):
    def __init__(self, call_id: str) -> None:
        super().__init__(f"call {call_id!r} not found")
        self.call_id = call_id


class DialogNotFound(NotFound):
    def __init__(self, dialog_id: str) -> None:
        super().__init__(f"dialog {dialog_id!r} not found")


class InvalidCallState(SwitchboardError):
    """An action that the call's current state does not allow."""

    status_hint = 400

    def __init__(self, call_id: str, state: str, action: str) -> None:
        super().__init__(f"cannot {action} call {call_id!r} in state {state}")
        self.call_id = call_id
        self.state = state
        self.action = action


class PolicyViolation(SwitchboardError):
    status_hint = 403


class PstnForbidden(PolicyViolation):
    def __init__(self) -> None:
        super().__init__(
            "a WhatsApp call is never connected to the PSTN: PHONE endpoints cannot be bridged to WhatsApp"
        )


class NoCallPermission(PolicyViolation):
    def __init__(self, user: str, sender: str, detail: str = "") -> None:
        text = f"WhatsApp user {user} has not granted call permission to sender {sender}"
        super().__init__(text + (f": {detail}" if detail else ""))
        self.user = user
        self.sender = sender


class UnsupportedEndpoint(SwitchboardError):
    def __init__(self, endpoint_type: str) -> None:
        super().__init__(f"endpoint type {endpoint_type} is not supported by this server")


class ChannelError(SwitchboardError):
    """A peer (Meta's Graph API, a SIP trunk, ...) refused or failed a request."""

    status_hint = 502

    def __init__(self, message: str, *, code: int | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable
