"""Call routing set up through the API: routes, and the sender's WhatsApp calls handed to routing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from support.platform import DISPLAY_NUMBER, PHONE_NUMBER_ID, WABA_ID, Platform


async def create_route(
    platform: Platform,
    criteria: list[dict[str, Any]],
    destinations: list[dict[str, Any]],
    name: str = "a route",
) -> str:
    created = await platform.api.post(
        "/callrouting/1/routes", json={"name": name, "criteria": criteria, "destinations": destinations}
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def route_sender_calls(platform: Platform) -> None:
    """The sender's inbound WhatsApp calls go to call routing."""
    sender = await platform.api.put(
        f"/admin/1/senders/{PHONE_NUMBER_ID}",
        json={
            "phoneNumberId": PHONE_NUMBER_ID,
            "displayPhoneNumber": DISPLAY_NUMBER,
            "wabaId": WABA_ID,
            "accessToken": "e2e-access-token",
            "appSecret": platform.app_secret,
            "verifyToken": "e2e-verify",
            "graphApiUrl": platform.emulator.graph_url,
            "inbound": {"action": "CALL_ROUTING"},
        },
    )
    assert sender.status_code == 200, sender.text


async def until(check: Callable[[], bool], seconds: float = 20) -> None:
    async with asyncio.timeout(seconds):
        while not check():
            await asyncio.sleep(0.1)
