"""Control endpoint of a running emulator (`POST /_emulator/calls`) and the scripted call behind it."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from ._media import SAMPLE_RATE
from ._state import EmulatorState
from ._user import UserCall, WhatsAppUser


async def wait_any(call: UserCall, states: tuple[str, ...], timeout: float) -> str | None:  # noqa: ASYNC109
    waiters = [asyncio.ensure_future(call.wait_state(s, timeout)) for s in states]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
    return next((s for s in states if s in call.states), None)


async def scripted_call(
    user: WhatsAppUser,
    phone_number_id: str,
    *,
    tone: float | None = 440.0,
    dtmf: str = "",
    dtmf_delay: float = 6.0,
    seconds: float = 10.0,
    accept_timeout: float = 60.0,
) -> dict[str, Any]:
    """Call a business, play a tone, press keys, stay `seconds`, hang up; report what happened."""
    call = await user.call(phone_number_id)
    log: list[str] = [f"connect webhook sent for {call.call_id}"]
    reached = await wait_any(call, ("ACCEPTED", "TERMINATED"), accept_timeout)
    if reached == "ACCEPTED":
        log.append("business accepted")
        with contextlib.suppress(ConnectionError):
            await call.wait_connected()
            log.append("media connected")
            if tone:
                call.play_tone(tone)
                log.append(f"playing {tone:g} Hz")
            if dtmf and await wait_any(call, ("TERMINATED",), dtmf_delay) is None:
                await call.press(dtmf)
                log.append(f"pressed {dtmf}")
        if await wait_any(call, ("TERMINATED",), seconds) == "TERMINATED":
            log.append("business terminated the call")
    elif reached is None:
        log.append("business did not accept in time")
    heard = call.heard_pcm()
    if not call.ended:
        await call.hang_up()
        log.append("user hung up")
    windows = heard[: heard.size // 960 * 960].reshape(-1, 960).astype(np.float64)
    audible = int(np.count_nonzero(np.sqrt((windows**2).mean(axis=1)) > 100)) if windows.size else 0
    return {
        "call_id": call.call_id,
        "states": call.states,
        "end_status": call.end_status,
        "graph_actions": [action for action, _ in call.events],
        "heard_seconds": round(heard.size / SAMPLE_RATE, 2),
        "heard_audible_seconds": round(audible * 0.02, 2),
        "recording": str(call.recording_path),
        "log": log,
    }


def add_control_routes(app: FastAPI, state: EmulatorState) -> None:
    @app.post("/_emulator/calls")
    async def place(request: Request) -> Response:
        body = await request.json()
        wa_id = str(body.get("from") or "15550001111")
        user = state.users.get(wa_id) or WhatsAppUser(state, wa_id, str(body.get("name") or wa_id))
        try:
            result = await scripted_call(
                user,
                str(body["to"]),
                tone=body.get("tone"),
                dtmf=str(body.get("dtmf") or ""),
                dtmf_delay=float(body.get("dtmf_delay", 6.0)),
                seconds=float(body.get("seconds", 10)),
            )
        except (KeyError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(result)
