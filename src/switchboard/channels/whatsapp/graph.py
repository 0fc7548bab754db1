"""Meta's Graph API calling endpoints (`POST /{phone-number-id}/calls`, permissions, messages).

Idempotent requests are retried on 5xx, 429 and timeouts with exponential backoff. `connect` is not
idempotent (a repeat would call the user twice): it is retried only when Meta cannot have seen it (429, or
the connection was never made); any other failure after it was sent raises `DialOutcomeUnknown`. Meta's
error codes become `ChannelError`s (or `NoCallPermission` for 138006) with a message a person can act on.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import httpx

from switchboard.channels.whatsapp.senders import Sender
from switchboard.core.errors import ChannelError, NoCallPermission

log = logging.getLogger(__name__)

META_ERRORS: dict[int, str] = {
    100: "invalid parameter or SDP",
    613: "call permission API rate limit reached",
    131055: "the number uses SIP signalling; Graph API call actions are off",
    138000: "calling is not enabled for this business number",
    138001: "the receiver cannot be called",
    138002: "1,000 concurrent calls reached on this number",
    138003: "a call to this receiver is already in progress",
    138004: "connection error at Meta",
    138005: "call rate limit reached",
    138006: "no approved call permission from this user",
    138007: "connect timeout: the SDP was not applied in time",
    138009: "call permission request limit reached",
    138012: "connected business-initiated call limit reached for this user",
    138013: "business-initiated calling is not available for this number",
    138014: "business-initiated calling disabled for low call quality",
    138015: "messaging limit below 2,000",
    138017: "the user already granted permanent permission",
    138018: "no calls webhook subscription and no SIP configured",
}


@dataclass(frozen=True, slots=True)
class GraphSettings:
    version: str = "v23.0"
    timeout_s: float = 10.0
    retries: int = 3
    backoff_s: float = 0.25


class GraphClient:
    def __init__(self, http: httpx.AsyncClient, settings: GraphSettings | None = None) -> None:
        self._http = http
        self._settings = settings or GraphSettings()

    def _url(self, sender: Sender, path: str) -> str:
        return f"{sender.graph_api_url}/{self._settings.version}/{sender.phone_number_id}/{path}"

    async def _request(
        self,
        sender: Sender,
        method: str,
        path: str,
        *,
        action: str,
        json: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        idempotent: bool = True,
    ) -> dict[str, Any]:
        url = self._url(sender, path)
        headers = {"Authorization": f"Bearer {sender.access_token}"}
        attempts = self._settings.retries + 1
        last = ""
        for attempt in range(attempts):
            try:
                response = await self._http.request(
                    method,
                    url,
                    json=json,
                    params=params,
                    headers=headers,
                    timeout=self._settings.timeout_s,
                )
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                if not idempotent and not isinstance(exc, _NOT_SENT):
                    raise DialOutcomeUnknown(action, last) from exc
            else:
                if response.status_code < 300:
                    return _json(response)
                if response.status_code < 500 and response.status_code != 429:
                    raise _error(action, response)
                last = f"HTTP {response.status_code}"
                if not idempotent and response.status_code != 429:
                    raise DialOutcomeUnknown(action, last)
            if attempt + 1 < attempts:
                await asyncio.sleep(self._settings.backoff_s * 2**attempt)
        raise ChannelError(f"Graph API {action} failed after {attempts} attempts ({last})", retryable=True)

    async def call_action(self, sender: Sender, call_id: str, action: str, sdp: str | None = None) -> None:
        body: dict[str, Any] = {"messaging_product": "whatsapp", "call_id": call_id, "action": action}
        if sdp is not None:
            body["session"] = {"sdp_type": "answer", "sdp": sdp}
        await self._request(sender, "POST", "calls", action=action, json=body)

    async def connect(self, sender: Sender, to: str, sdp_offer: str, callback_data: str | None = None) -> str:
        body: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "to": to,
            "action": "connect",
            "session": {"sdp_type": "offer", "sdp": sdp_offer},
        }
        if callback_data:
            body["biz_opaque_callback_data"] = callback_data[:512]
        data = await self._request(sender, "POST", "calls", action="connect", json=body, idempotent=False)
        try:
            return str(data["calls"][0]["id"])
        except (KeyError, IndexError, TypeError) as exc:
            raise ChannelError(f"Graph API connect answered without a call id: {data}") from exc

    async def send_permission_request(self, sender: Sender, to: str, text: str) -> str:
        body = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": "interactive",
            "interactive": {
                "type": "call_permission_request",
                "action": {"name": "call_permission_request"},
                "body": {"text": text},
            },
        }
        data = await self._request(sender, "POST", "messages", action="call_permission_request", json=body)
        messages = data.get("messages") or [{}]
        return str(messages[0].get("id", ""))

    async def call_permissions(self, sender: Sender, user: str) -> dict[str, Any]:
        return await self._request(
            sender, "GET", "call_permissions", action="call_permissions", params={"user_wa_id": user}
        )


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _error(action: str, response: httpx.Response) -> ChannelError:
    error = _json(response).get("error") or {}
    code = error.get("code") if isinstance(error, dict) else None
    message = error.get("message", "") if isinstance(error, dict) else ""
    code_int = code if isinstance(code, int) else None
    known = META_ERRORS.get(code_int or 0, "")
    text = f"Graph API {action} refused (HTTP {response.status_code}"
    text += f", code {code_int}" if code_int is not None else ""
    text += f"): {known or message or response.text[:200]}"
    if code_int == 138006:
        return NoCallPermissionError(text)
    return ChannelError(text, code=code_int)


_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Transport failures after which Meta cannot have received the request."""


class DialOutcomeUnknown(ChannelError):
    """A `connect` was sent but its answer was lost: Meta may or may not have placed the call."""

    def __init__(self, action: str, detail: str) -> None:
        super().__init__(f"Graph API {action}: outcome unknown ({detail}); Meta may have placed the call")


class NoCallPermissionError(ChannelError):
    """Meta says the user has not granted call permission (138006)."""

    status_hint = NoCallPermission.status_hint

    def __init__(self, text: str) -> None:
        super().__init__(text, code=138006)
