"""The `/phone` page: a browser's own RTCPeerConnection plays the WhatsApp user.

- `GET  /phone`                         the page (static/phone.html + phone.js)
- `GET  /phone/numbers`                 business numbers to call
- `POST /phone/calls`                   `{"phone_number_id","wa_id","name","sdp"}` → `{"call_id"}`;
                                        sends the `connect` webhook with the browser's offer
- `GET  /phone/calls/{call_id}?since=N` long-poll (≤ 20 s): `{"states":[...], "sdp": answer|null}`
- `POST /phone/calls/{call_id}/hangup`  the user hangs up (terminate webhook)
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from . import _sdp
from ._state import EmulatorState
from ._user import CallBase, WhatsAppUser

LONG_POLL_SECONDS = 20.0


class BrowserCall(CallBase):
    """A user-initiated call whose media peer is the browser: the answer is handed to the page."""

    def __init__(self, state: EmulatorState, *args: Any, **kwargs: Any) -> None:
        super().__init__(state, *args, **kwargs)
        self.changed = asyncio.Event()

    def _set_state(self, state: str) -> None:
        super()._set_state(state)
        self.changed.set()
        self.changed = asyncio.Event()

    async def _apply_answer(self, sdp: str) -> None:
        self.answer_sdp = sdp

    async def _close_media(self) -> None:
        return None


def _client_address(request: Request) -> str | None:
    """The browser's IP address as this server saw it, if the transport gave one."""
    host = request.client.host if request.client else None
    try:
        return str(ipaddress.ip_address(host)) if host else None
    except ValueError:
        return None


def _static(name: str) -> str:
    return resources.files("switchboard.emulator").joinpath("static", name).read_text("utf-8")


def add_phone_routes(app: FastAPI, state: EmulatorState) -> None:
    @app.get("/phone")
    async def phone_page() -> Response:
        return HTMLResponse(_static("phone.html"))

    @app.get("/phone/phone.js")
    async def phone_js() -> Response:
        return Response(_static("phone.js"), media_type="text/javascript")

    @app.get("/phone/numbers")
    async def numbers() -> Response:
        return JSONResponse(
            [
                {"phone_number_id": n.phone_number_id, "display_phone_number": n.display_phone_number}
                for n in state.numbers.values()
            ]
        )

    @app.post("/phone/calls")
    async def place(request: Request) -> Response:
        body = await request.json()
        number = state.numbers.get(str(body.get("phone_number_id")))
        sdp = body.get("sdp")
        if number is None or not isinstance(sdp, str):
            return JSONResponse({"error": "phone_number_id and sdp are required"}, status_code=400)
        wa_id = str(body.get("wa_id") or "15550001111")
        user = state.users.get(wa_id) or WhatsAppUser(state, wa_id, str(body.get("name") or "Browser"))
        call = BrowserCall(state, number, user, "USER_INITIATED")
        offer = _sdp.browser_offer(sdp, _client_address(request))
        call._set_state("RINGING")
        call._spawn(call._accept_timer())
        call._spawn(
            call._send_calls(call._call_entry("connect", session={"sdp_type": "offer", "sdp": offer}))
        )
        return JSONResponse({"call_id": call.call_id})

    @app.get("/phone/calls/{call_id}")
    async def poll(call_id: str, since: int = 0) -> Response:
        call = state.calls.get(call_id)
        if not isinstance(call, BrowserCall):
            return JSONResponse({"error": "no such call"}, status_code=404)
        if len(call.states) <= since:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(call.changed.wait(), LONG_POLL_SECONDS)
        return JSONResponse({"states": call.states, "sdp": call.answer_sdp})

    @app.post("/phone/calls/{call_id}/hangup")
    async def hangup(call_id: str) -> Response:
        call = state.calls.get(call_id)
        if not isinstance(call, BrowserCall):
            return JSONResponse({"error": "no such call"}, status_code=404)
        await call.hang_up()
        return JSONResponse({"states": call.states})
