"""`/webhooks/whatsapp`: Meta's verification handshake and signed call/message notifications.

A POST is authenticated before anything is parsed: the `X-Hub-Signature-256` of the raw body must match
one of the configured app secrets (missing: 401, wrong: 403). Malformed JSON or a shape that is not a
WhatsApp notification is a 400 naming the problem. Each item (a call event, a status, a message) is then
stored as a durable job keyed by what it is (`call:<id>:<event>`, ...) and Meta's delivery is answered at
once; the job runs right away and, if it fails, again with backoff, across restarts, until done. Meta
delivers at least once and out of order: a repeated item is not stored again, processing is idempotent,
and a terminate that comes before its connect ends the call as soon as it exists (or keeps it from being
offered at all).

Several nodes. Meta delivers to whichever node its webhook URL reaches. An item about a call that
another live node carries is handed to that node's job queue (`JobElsewhere`), which runs it there; an
item about a call whose node died waits (retried) until a live node has ended that call.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic import ValidationError

from switchboard.channels.whatsapp.numbers import wa_number
from switchboard.channels.whatsapp.payloads import (
    CallEntry,
    CallStatus,
    Message,
    Notification,
    Value,
    as_int,
    contact_name,
)
from switchboard.channels.whatsapp.permissions import WhatsAppPermissions
from switchboard.channels.whatsapp.senders import Sender, SenderDirectory
from switchboard.channels.whatsapp.signature import matching_secret
from switchboard.core.control import CallControl, InboundCall
from switchboard.core.jobs import JobElsewhere, JobRunner
from switchboard.core.models import Endpoint, EndpointType, ErrorCode
from switchboard.core.nodes import CallOwners
from switchboard.core.ports import Job
from switchboard.errors import SwitchboardError
from switchboard.httpapi.errors import ApiError

log = logging.getLogger(__name__)

MEDIA_FAILURE_CODES = {138020, 138021, 138022, 138023}
ITEM_KIND = "whatsapp.webhook"
"""Jobs that process one item of a Meta notification."""


class CallOnDeadNode(SwitchboardError):
    """The item's call was carried by a node that stopped; a live node is ending it (retry after)."""


class WhatsAppWebhooks:
    """The webhook routes (`router`) and the job handler (`kind`, `run`, `gave_up`) of their items."""

    kind = ITEM_KIND

    def __init__(
        self,
        control: CallControl,
        senders: SenderDirectory,
        jobs: JobRunner,
        permissions: WhatsAppPermissions,
        owners: CallOwners | None = None,
    ) -> None:
        self._control = control
        self._owners = owners
        self._senders = senders
        self._jobs = jobs
        self._permissions = permissions
        self.router = APIRouter(tags=["WhatsApp webhooks"])
        self.router.add_api_route("/webhooks/whatsapp", self.verify, methods=["GET"])
        self.router.add_api_route("/webhooks/whatsapp", self.notify, methods=["POST"])

    async def verify(self, request: Request) -> Response:
        """Meta's subscription check: echo `hub.challenge` when `hub.verify_token` is one of ours."""
        params = request.query_params
        if params.get("hub.mode") != "subscribe":
            raise ApiError(400, "hub.mode must be 'subscribe'")
        token = params.get("hub.verify_token", "")
        if not token or not any(s.verify_token == token for s in await self._senders.list()):
            raise ApiError(403, "hub.verify_token does not match any sender's verify_token")
        return PlainTextResponse(params.get("hub.challenge", ""))

    async def notify(self, request: Request) -> Response:
        header = request.headers.get("x-hub-signature-256")
        if not header:
            raise ApiError(401, "missing X-Hub-Signature-256 header")
        body = await request.body()
        senders = await self._senders.list()
        secret = matching_secret(body, header, {s.app_secret for s in senders})
        if secret is None:
            raise ApiError(403, "X-Hub-Signature-256 does not match the body for any app secret")
        notification = _parse(body)
        for entry in notification.entry:
            for change in entry.changes:
                sender = next(
                    (s for s in senders if s.phone_number_id == change.value.metadata.phone_number_id),
                    None,
                )
                if sender is None or sender.app_secret != secret:
                    log.warning(
                        "webhook for unknown phone_number_id %s ignored",
                        change.value.metadata.phone_number_id,
                    )
                    continue
                for key, payload in _items(sender, change.field, change.value):
                    if not await self._jobs.submit(self.kind, key, payload):
                        log.info("repeated webhook item %s ignored", key)
        return Response(status_code=200)

    # -- the job of one item -------------------------------------------------------------------------

    async def run(self, job: Job) -> None:
        sender = await self._senders.get(str(job.payload["sender"]))
        if sender is None:
            log.warning("webhook item %s: sender %s is gone; dropped", job.key, job.payload["sender"])
            return
        value = Value.model_validate(job.payload["value"])
        field = job.payload["field"]
        if field == "calls":
            await self._check_owner(value)
            for call in value.calls:
                await self._call(sender, value, call)
            for status in value.statuses:
                await self._status(status)
        elif field == "messages":
            for message in value.messages:
                await self._message(sender, message)

    async def _check_owner(self, value: Value) -> None:
        """Raise `JobElsewhere` when another live node carries the item's call; raise (to retry later)
        when its node died and its calls are not ended yet."""
        if self._owners is None:
            return
        signals = [(c.id, c.biz_opaque_callback_data) for c in value.calls]
        signals += [(status.id, status.biz_opaque_callback_data) for status in value.statuses]
        for peer_call_id, hint in signals:
            owner = await self._owners.of_peer_call(peer_call_id, hint)
            if owner is None:
                continue
            if owner.alive:
                raise JobElsewhere(owner.node_id)
            raise CallOnDeadNode(f"call {peer_call_id} is carried by node {owner.node_id}, which stopped")

    async def gave_up(self, job: Job, error: str) -> None:
        log.error("webhook item %s was never processed: %s", job.key, error)

    async def _call(self, sender: Sender, value: Value, call: CallEntry) -> None:
        if call.event == "connect":
            await self._connect(sender, value, call)
        elif call.event == "terminate":
            code, description = _termination(call, value)
            await self._control.remote_hangup(
                call.id, code=code, description=description, call_hint=call.biz_opaque_callback_data
            )
        else:
            log.info("call event %s for %s not used", call.event, call.id)

    async def _connect(self, sender: Sender, value: Value, call: CallEntry) -> None:
        if call.session is None:
            return
        offered = call.session.sdp_type == "offer" and call.direction != "BUSINESS_INITIATED"
        if not offered:
            await self._control.remote_answered(
                call.id, call.session.sdp, call_hint=call.biz_opaque_callback_data
            )
            return
        if self._control.was_ended_early(call.id):
            log.info("connect for %s came after its terminate: not offered", call.id)
            return
        user = call.from_ or call.from_user_id or ""
        custom = {
            key: str(val)
            for key, val in (
                ("deeplinkPayload", call.deeplink_payload),
                ("ctaPayload", call.cta_payload),
                ("userId", call.from_user_id),
                ("userName", contact_name(value, call.from_)),
            )
            if val
        }
        await self._control.receive_inbound(
            InboundCall(
                endpoint=Endpoint(
                    EndpointType.WHATSAPP,
                    phone_number=wa_number(user) or user,
                    display_name=contact_name(value, call.from_),
                ),
                to=value.metadata.display_phone_number or call.to or sender.display_phone_number,
                peer_call_id=call.id,
                remote_offer=call.session.sdp,
                target=sender.inbound,
                sender_id=sender.phone_number_id,
                custom_data=custom,
            )
        )

    async def _status(self, status: CallStatus) -> None:
        match status.status.upper():
            case "RINGING":
                await self._control.remote_ringing(status.id, call_hint=status.biz_opaque_callback_data)
            case "REJECTED":
                await self._control.remote_hangup(
                    status.id,
                    code=ErrorCode.REJECTED,
                    description="the user declined the call",
                    call_hint=status.biz_opaque_callback_data,
                )
            case other:
                log.info("call %s status %s", status.id, other)

    async def _message(self, sender: Sender, message: Message) -> None:
        interactive = message.interactive
        if interactive is None or interactive.call_permission_reply is None or not message.from_:
            return
        reply = interactive.call_permission_reply
        expiration = as_int(reply.expiration_timestamp)
        await self._permissions.on_reply(
            sender.phone_number_id,
            message.from_,
            accepted=reply.response.lower() == "accept",
            permanent=bool(reply.is_permanent),
            expires_at=datetime.fromtimestamp(expiration, UTC) if expiration else None,
        )


def _items(sender: Sender, field: str, value: Value) -> list[tuple[str, dict[str, Any]]]:
    """The notification's items, each with its key and what its job needs (the change's metadata,
    contacts and errors with that one item); a connect without a session is a 400 here."""
    shared = value.model_dump(mode="json", by_alias=True, exclude={"calls", "statuses", "messages"})

    def item(kind: str, entry: Any) -> dict[str, Any]:
        one = {**shared, kind: [entry.model_dump(mode="json", by_alias=True)]}
        return {"sender": sender.phone_number_id, "field": field, "value": one}

    found: list[tuple[str, dict[str, Any]]] = []
    if field == "calls":
        for call in value.calls:
            if call.event == "connect" and call.session is None:
                raise ApiError(400, f"calls[{call.id}].session: a connect event needs a session")
            found.append((f"call:{call.id}:{call.event}", item("calls", call)))
        for status in value.statuses:
            found.append((f"status:{status.id}:{status.status.upper()}", item("statuses", status)))
    elif field == "messages":
        for message in value.messages:
            payload = item("messages", message)
            digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]
            found.append((f"message:{message.id or digest}", payload))
    return found


def _parse(body: bytes) -> Notification:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, "body is not valid JSON: nested too deeply") from None
    if not isinstance(data, dict) or data.get("object") != "whatsapp_business_account":
        raise ApiError(400, "object: expected 'whatsapp_business_account'")
    try:
        return Notification.model_validate(data)
    except ValidationError as exc:
        where = "; ".join(".".join(str(p) for p in err["loc"]) + f": {err['msg']}" for err in exc.errors())
        raise ApiError(400, f"not a WhatsApp notification: {where}") from None


def _termination(call: CallEntry, value: Value) -> tuple[ErrorCode, str]:
    status = (call.status or "").upper()
    codes = [e.code for e in value.errors if e.code is not None]
    messages = "; ".join(e.message for e in value.errors if e.message)
    if status == "COMPLETED" or (not status and not codes):
        return ErrorCode.NORMAL_HANGUP, "the call ended"
    if any(code in MEDIA_FAILURE_CODES for code in codes):
        return ErrorCode.MEDIA_FAILURE, f"Meta reports a media failure ({codes}): {messages}"
    detail = f" ({codes}: {messages})" if codes else ""
    if call.direction == "BUSINESS_INITIATED" and call.start_time is None:
        return ErrorCode.NO_ANSWER, "the user did not answer" + detail
    return ErrorCode.DESTINATION_UNAVAILABLE, "Meta ended the call as failed" + detail
