"""REST routes of the WhatsApp channel: Infobip's call-permission API and the senders admin API."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from switchboard.channels.whatsapp.permissions import WhatsAppPermissions
from switchboard.channels.whatsapp.senders import INBOUND_ID_FIELDS, REQUIRED_IDS, Sender, SenderDirectory
from switchboard.core import policy
from switchboard.core.models import InboundAction, InboundTarget
from switchboard.httpapi.errors import ApiError
from switchboard.httpapi.numbers import PhoneNumber
from switchboard.httpapi.urls import UnsafeUrl, UrlPolicy


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000") if value else None


def _period(delta: timedelta) -> str:
    return f"P{delta.days}D" if delta.days >= 2 else f"PT{int(delta.total_seconds() // 3600)}H"


class PermissionRequestBody(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    from_: PhoneNumber = Field(alias="from")
    to: PhoneNumber
    body_text: str = Field(
        "We would like to call you on WhatsApp.", alias="text", min_length=1, max_length=1024
    )
    callback_data: str | None = Field(None, alias="callbackData", max_length=4000)
    notify_url: str | None = Field(None, alias="notifyUrl")


class InboundBody(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    action: Literal["SUBSCRIPTION", "CONTACT_CENTER", "IVR_SCENARIO", "FLOW", "CALL_ROUTING"]
    calls_configuration_id: str | None = Field(None, alias="callsConfigurationId")
    scenario_id: str | None = Field(None, alias="scenarioId")
    flow_id: str | None = Field(None, alias="flowId")
    route_id: str | None = Field(None, alias="routeId")
    queue_id: str | None = Field(None, alias="queueId")

    def target(self) -> InboundTarget:
        action = InboundAction(self.action)
        field = INBOUND_ID_FIELDS[action]
        target_id: str | None = getattr(self, field)
        if action in REQUIRED_IDS and not target_id:
            alias = type(self).model_fields[field].alias
            raise ApiError(400, f"inbound.{alias}: required for action {action.value}")
        return InboundTarget(action, target_id)


class SenderBody(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    phone_number_id: str = Field(alias="phoneNumberId", min_length=1)
    display_phone_number: str = Field(alias="displayPhoneNumber", min_length=1)
    waba_id: str = Field(alias="wabaId", min_length=1)
    access_token: str = Field(alias="accessToken", min_length=1)
    app_secret: str = Field(alias="appSecret", min_length=1)
    verify_token: str = Field(alias="verifyToken", min_length=1)
    graph_api_url: str = Field("https://graph.facebook.com", alias="graphApiUrl")
    inbound: InboundBody

    @field_validator("graph_api_url")
    @classmethod
    def _graph(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")


def sender_json(sender: Sender) -> dict[str, Any]:
    inbound: dict[str, Any] = {"action": sender.inbound.action.value}
    if sender.inbound.id is not None:
        alias = InboundBody.model_fields[INBOUND_ID_FIELDS[sender.inbound.action]].alias
        inbound[alias or ""] = sender.inbound.id
    return {
        "phoneNumberId": sender.phone_number_id,
        "displayPhoneNumber": sender.display_phone_number,
        "wabaId": sender.waba_id,
        "graphApiUrl": sender.graph_api_url,
        "inbound": inbound,
    }


def sender_from_body(body: SenderBody) -> Sender:
    return Sender(
        phone_number_id=body.phone_number_id,
        display_phone_number=body.display_phone_number,
        waba_id=body.waba_id,
        access_token=body.access_token,
        app_secret=body.app_secret,
        verify_token=body.verify_token,
        graph_api_url=body.graph_api_url,
        inbound=body.inbound.target(),
    )


def build_router(
    permissions: WhatsAppPermissions,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> APIRouter:
    """Infobip's call-permission API (an application's)."""
    router = APIRouter()

    @router.get(
        "/whatsapp/1/senders/{sender}/calls/{user_number}/permissions", tags=["WhatsApp call permissions"]
    )
    async def get_permission(
        sender: Annotated[PhoneNumber, Path()], user_number: Annotated[PhoneNumber, Path()]
    ) -> dict[str, Any]:
        found = await permissions.sender(sender)
        record = await permissions.current(found, user_number)
        now = clock()

        def limits(items: list[policy.Limit]) -> list[dict[str, Any]]:
            return [
                {
                    "timePeriod": _period(limit.period),
                    "maxAllowed": limit.max_allowed,
                    "currentUsage": limit.current_usage,
                    **({"limitExpirationTime": _iso(limit.expires_at)} if limit.expires_at else {}),
                }
                for limit in items
            ]

        status = policy.effective_status(record, now)
        return {
            "status": status.value,
            "expirationTime": _iso(record.expires_at) if status.value == "TEMPORARY" else None,
            "actions": [
                {
                    "name": "SEND_CALL_PERMISSION_REQUEST",
                    "canPerformAction": policy.can_request_permission(record, now),
                    "limits": limits(policy.request_limits(record, now)),
                },
                {
                    "name": "START_CALL",
                    "canPerformAction": policy.can_start_call(record, now),
                    "limits": limits(policy.call_limits(record, now)),
                },
            ],
        }

    @router.post(
        "/whatsapp/1/message/interactive/call-permission-request", tags=["WhatsApp call permissions"]
    )
    async def request_permission(body: PermissionRequestBody) -> dict[str, Any]:
        found = await permissions.sender(body.from_)
        message_id = await permissions.request(found, body.to, body.body_text)
        return {
            "to": body.to,
            "messageCount": 1,
            "messageId": message_id,
            "status": {
                "groupId": 1,
                "groupName": "PENDING",
                "id": 7,
                "name": "PENDING_ENROUTE",
                "description": "Message sent to next instance",
            },
        }

    return router


def build_admin_router(senders: SenderDirectory, *, urls: UrlPolicy) -> APIRouter:
    """The senders admin API: the senders with their Meta secrets (write-only: never answered)."""
    router = APIRouter()

    async def checked(body: SenderBody) -> Sender:
        try:
            await urls.check_url(body.graph_api_url, "graphApiUrl")
        except UnsafeUrl as exc:
            raise ApiError(400, str(exc)) from None
        return sender_from_body(body)

    @router.get("/admin/1/senders", tags=["Senders"])
    async def list_senders() -> list[dict[str, Any]]:
        return [sender_json(s) for s in await senders.list()]

    @router.get("/admin/1/senders/{phone_number_id}", tags=["Senders"])
    async def get_sender(phone_number_id: str) -> dict[str, Any]:
        found = await senders.get(phone_number_id)
        if found is None:
            raise ApiError(404, f"sender {phone_number_id!r} not found")
        return sender_json(found)

    @router.post("/admin/1/senders", status_code=201, tags=["Senders"])
    async def create_sender(body: SenderBody) -> dict[str, Any]:
        if await senders.get(body.phone_number_id) is not None:
            raise ApiError(409, f"sender {body.phone_number_id!r} exists; use PUT to change it")
        sender = await checked(body)
        await senders.save(sender)
        return sender_json(sender)

    @router.put("/admin/1/senders/{phone_number_id}", tags=["Senders"])
    async def replace_sender(phone_number_id: str, body: SenderBody) -> dict[str, Any]:
        if body.phone_number_id != phone_number_id:
            raise ApiError(400, "phoneNumberId: must equal the id in the path")
        sender = await checked(body)
        await senders.save(sender)
        return sender_json(sender)

    @router.delete("/admin/1/senders/{phone_number_id}", status_code=204, tags=["Senders"])
    async def delete_sender(phone_number_id: str) -> Response:
        if not await senders.delete(phone_number_id):
            raise ApiError(404, f"sender {phone_number_id!r} not found")
        return Response(status_code=204)

    return router
