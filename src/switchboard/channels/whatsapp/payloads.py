"""Meta's webhook payloads for the `calls` and `messages` fields, as typed models.

Shapes follow Meta's calling webhooks (the `calls` and `messages` fields of the Cloud API). Unknown fields are
kept (`extra="allow"`) so newer payloads still parse; missing required fields are a 400 naming them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow")


class Session(_Lenient):
    sdp_type: str
    sdp: str


class CallEntry(_Lenient):
    id: str
    event: str
    to: str | None = None
    from_: str | None = Field(None, alias="from")
    from_user_id: str | None = None
    timestamp: str | int | None = None
    direction: str | None = None
    session: Session | None = None
    status: str | None = None
    start_time: str | int | None = None
    end_time: str | int | None = None
    duration: int | str | None = None
    biz_opaque_callback_data: str | None = None
    deeplink_payload: str | None = None
    cta_payload: str | None = None


class CallStatus(_Lenient):
    id: str
    status: str
    type: str | None = None
    timestamp: str | int | None = None
    recipient_id: str | None = None
    biz_opaque_callback_data: str | None = None


class Profile(_Lenient):
    name: str | None = None


class Contact(_Lenient):
    wa_id: str | None = None
    user_id: str | None = None
    profile: Profile | None = None


class Metadata(_Lenient):
    display_phone_number: str | None = None
    phone_number_id: str


class WebhookError(_Lenient):
    code: int | None = None
    message: str | None = None


class PermissionReply(_Lenient):
    response: str
    is_permanent: bool | None = None
    expiration_timestamp: str | int | None = None
    response_source: str | None = None


class Interactive(_Lenient):
    type: str
    call_permission_reply: PermissionReply | None = None


class Message(_Lenient):
    id: str | None = None
    from_: str | None = Field(None, alias="from")
    type: str | None = None
    timestamp: str | int | None = None
    interactive: Interactive | None = None


class Value(_Lenient):
    messaging_product: str | None = None
    metadata: Metadata
    contacts: list[Contact] = Field(default_factory=list)
    calls: list[CallEntry] = Field(default_factory=list)
    statuses: list[CallStatus] = Field(default_factory=list)
    messages: list[Message] = Field(default_factory=list)
    errors: list[WebhookError] = Field(default_factory=list)


class Change(_Lenient):
    field: str
    value: Value


class Entry(_Lenient):
    id: str
    changes: list[Change]


class Notification(_Lenient):
    object: str
    entry: list[Entry]


def contact_name(value: Value, wa_id: str | None) -> str | None:
    for contact in value.contacts:
        if contact.wa_id == wa_id and contact.profile is not None:
            return contact.profile.name
    return None


def as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
