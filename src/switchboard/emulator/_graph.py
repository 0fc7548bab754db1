"""Meta's Graph API calling endpoints (reference §2 and §5), as a FastAPI app.

Routes (any `vNN.N` version prefix):
- `POST /{version}/{phone_number_id}/calls` — connect, pre_accept, accept, reject, terminate
- `POST /{version}/{phone_number_id}/messages` — call_permission_request (other messages are accepted)
- `GET  /{version}/{phone_number_id}/call_permissions?user_wa_id=`
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from ._state import (
    BusinessNumber,
    EmulatorState,
    GraphError,
    RecordedRequest,
    invalid_parameter,
    new_message_id,
)
from ._user import WhatsAppUser

_VERSION = re.compile(r"^v\d+\.\d+$")
_CALL_ACTIONS = ("connect", "pre_accept", "accept", "reject", "terminate")
SUCCESS = {"messaging_product": "whatsapp", "success": True}


def _error(exc: GraphError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.http_status)


def _authorize(state: EmulatorState, request: Request, version: str, phone_number_id: str) -> BusinessNumber:
    if not _VERSION.match(version):
        raise GraphError(400, 2500, f"Unknown path components: /{version}", error_type="OAuthException")
    number = state.numbers.get(phone_number_id)
    header = request.headers.get("authorization", "")
    token = header[7:] if header.lower().startswith("bearer ") else None
    if token is None or number is None or token != number.access_token:
        if (
            number is None
            and token is not None
            and any(n.access_token == token for n in state.numbers.values())
        ):
            raise GraphError(
                400,
                100,
                f"Unsupported post request. Object with ID '{phone_number_id}' does not exist, "
                "cannot be loaded due to missing permissions, or does not support this operation.",
                error_subcode=33,
                error_type="GraphMethodException",
            )
        raise GraphError(401, 190, "Invalid OAuth access token - Cannot parse access token")
    return number


async def _apply_fault(state: EmulatorState, action: str) -> Response | None:
    fault = state.faults.take(action)
    if fault is None:
        return None
    if fault.kind == "hang":
        await asyncio.sleep(fault.seconds)
        return None
    error = GraphError(fault.status, 1, "An unknown error has occurred.", error_type="OAuthException")
    return _error(error)


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode("utf-8", "replace")


def _require_str(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise invalid_parameter(f"{key} is required")
    return value


def _session_sdp(body: dict[str, Any], sdp_type: str) -> str:
    session = body.get("session")
    if not isinstance(session, dict) or session.get("sdp_type") != sdp_type:
        raise invalid_parameter(f'session.sdp_type must be "{sdp_type}"')
    sdp = session.get("sdp")
    if not isinstance(sdp, str) or not sdp:
        raise invalid_parameter("session.sdp is required")
    return sdp


async def _connect(state: EmulatorState, number: BusinessNumber, body: dict[str, Any]) -> Any:
    to = _require_str(body, "to")
    sdp = _session_sdp(body, "offer")
    if "\r\n" not in sdp:
        raise invalid_parameter("SDP lines must end with \\r\\n")
    opaque = body.get("biz_opaque_callback_data")
    if opaque is not None and (not isinstance(opaque, str) or len(opaque) > 512):
        raise invalid_parameter("biz_opaque_callback_data must be a string of at most 512 chars")
    permission = state.permission(number.phone_number_id, to)
    if not permission.can_call(state.clock()):
        raise GraphError(
            400,
            138006,
            "No approved call permission from the recipient",
            details="No approved call permission from the recipient",
        )
    user = state.users.get(to) or WhatsAppUser(state, to, name=to)
    call = await user.incoming_call(number, sdp, opaque)
    call.record_action("connect", body)
    return {"messaging_product": "whatsapp", "calls": [{"id": call.call_id}]}


async def _call_action(
    state: EmulatorState, number: BusinessNumber, action: str, body: dict[str, Any]
) -> Any:
    call_id = _require_str(body, "call_id")
    call = state.calls.get(call_id)
    if call is None or call.phone_number_id != number.phone_number_id:
        raise invalid_parameter(f"Call ID {call_id} not found")
    call.record_action(action, body)
    if action in ("pre_accept", "accept"):
        sdp = _session_sdp(body, "answer")
        if action == "pre_accept":
            await call.graph_pre_accept(sdp)
        else:
            opaque = body.get("biz_opaque_callback_data")
            await call.graph_accept(sdp, opaque if isinstance(opaque, str) else None)
    elif action == "reject":
        await call.graph_reject()
    else:
        await call.graph_terminate()
    return SUCCESS


def _validate_permission_request(body: dict[str, Any]) -> str:
    if body.get("recipient_type", "individual") != "individual":
        raise invalid_parameter("recipient_type must be individual")
    to = _require_str(body, "to")
    interactive = body.get("interactive")
    if not isinstance(interactive, dict):
        raise invalid_parameter("interactive is required")
    action = interactive.get("action")
    if not isinstance(action, dict) or action.get("name") != "call_permission_request":
        raise invalid_parameter('interactive.action.name must be "call_permission_request"')
    text = interactive.get("body", {}).get("text") if isinstance(interactive.get("body"), dict) else None
    if not isinstance(text, str) or not text or len(text) > 1024:
        raise invalid_parameter("interactive.body.text is required (at most 1024 characters)")
    return to


def create_graph_app(state: EmulatorState) -> FastAPI:
    """The Graph API calling endpoints over `state`; every request is appended to `state.requests`."""
    app = FastAPI(title="Meta Graph API emulator", openapi_url=None, docs_url=None, redoc_url=None)

    @app.post("/{version}/{phone_number_id}/calls")
    async def calls(version: str, phone_number_id: str, request: Request) -> Response:
        body = await _json_body(request)
        state.requests.append(RecordedRequest("POST", request.url.path, body))
        try:
            number = _authorize(state, request, version, phone_number_id)
            if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
                raise invalid_parameter('messaging_product must be "whatsapp"')
            action = body.get("action")
            if action not in _CALL_ACTIONS:
                raise invalid_parameter(f"action must be one of {', '.join(_CALL_ACTIONS)}")
            fault = await _apply_fault(state, str(action))
            if fault is not None:
                return fault
            if action == "connect":
                result = await _connect(state, number, body)
            else:
                result = await _call_action(state, number, str(action), body)
        except GraphError as exc:
            return _error(exc)
        return JSONResponse(result)

    @app.post("/{version}/{phone_number_id}/messages")
    async def messages(version: str, phone_number_id: str, request: Request) -> Response:
        body = await _json_body(request)
        state.requests.append(RecordedRequest("POST", request.url.path, body))
        try:
            number = _authorize(state, request, version, phone_number_id)
            fault = await _apply_fault(state, "messages")
            if fault is not None:
                return fault
            if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
                raise invalid_parameter('messaging_product must be "whatsapp"')
            to = _require_str(body, "to")
            message_id = new_message_id()
            interactive = body.get("interactive")
            if (
                body.get("type") == "interactive"
                and isinstance(interactive, dict)
                and (interactive.get("type") == "call_permission_request")
            ):
                to = _validate_permission_request(body)
                permission = state.permission(phone_number_id, to)
                now = state.clock()
                if permission.current_status(now) == "permanent":
                    raise GraphError(400, 138017, "Permanent call permission already granted")
                if not permission.can_request(now):
                    raise GraphError(
                        400,
                        138009,
                        "Call permission request limit reached",
                        details="At most 1 request per 24 hours and 2 per 7 days",
                    )
                permission.request_times.append(now)
                permission.last_request_message_id = message_id
                user = state.users.get(to)
                if user is not None:
                    user.permission_requested(number, message_id, body)
        except GraphError as exc:
            return _error(exc)
        return JSONResponse(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to}],
                "messages": [{"id": message_id}],
            }
        )

    @app.get("/{version}/{phone_number_id}/call_permissions")
    async def call_permissions(version: str, phone_number_id: str, request: Request) -> Response:
        state.requests.append(RecordedRequest("GET", str(request.url.path), dict(request.query_params)))
        try:
            _authorize(state, request, version, phone_number_id)
            fault = await _apply_fault(state, "call_permissions")
            if fault is not None:
                return fault
            wa_id = request.query_params.get("user_wa_id")
            if not wa_id:
                raise invalid_parameter("user_wa_id is required")
        except GraphError as exc:
            return _error(exc)
        return JSONResponse(state.permission(phone_number_id, wa_id).document(state.clock()))

    return app
