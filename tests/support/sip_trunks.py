"""A running platform with a SIP listener, and STATIC trunks created through the API."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from support.platform import Platform, running_platform
from support.sipp import free_port


@contextlib.asynccontextmanager
async def sip_listening_platform(tmp_path: Path) -> AsyncIterator[tuple[Platform, int]]:
    """The platform and the UDP port its SIP endpoint listens on."""
    port = free_port("udp")
    async with running_platform(tmp_path, sip={"listen": [f"udp:127.0.0.1:{port}"]}) as platform:
        yield platform, port


async def create_trunk(platform: Platform, **fields: Any) -> str:
    body = {
        "type": "STATIC",
        "name": "PBX",
        "channelLimit": 4,
        "billingPackage": {"packageType": "METERED"},
        "codecs": ["PCMU"],
    } | fields
    response = await platform.api.post("/calls/1/sip-trunks", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])
