"""The senders admin API, API-key checks on every API route, and the served OpenAPI document."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from support.platform import PHONE_NUMBER_ID, Platform, running_platform

pytestmark = pytest.mark.e2e

NEW_SENDER = {
    "phoneNumberId": "555000111",
    "displayPhoneNumber": "+1 555 000 1111",
    "wabaId": "777",
    "accessToken": "token-2",
    "appSecret": "secret-2",
    "verifyToken": "verify-2",
    "graphApiUrl": "http://127.0.0.1:9/",
    "inbound": {"action": "SUBSCRIPTION", "callsConfigurationId": "e2e-app"},
}


async def test_senders_admin_api(platform: Platform) -> None:
    listed = (await platform.api.get("/admin/1/senders")).json()
    assert [s["phoneNumberId"] for s in listed] == [PHONE_NUMBER_ID]
    assert "appSecret" not in listed[0] and "accessToken" not in listed[0]

    created = await platform.api.post("/admin/1/senders", json=NEW_SENDER)
    assert created.status_code == 201, created.text
    assert created.json()["graphApiUrl"] == "http://127.0.0.1:9"
    assert (await platform.api.post("/admin/1/senders", json=NEW_SENDER)).status_code == 409

    bad = await platform.api.post("/admin/1/senders", json={**NEW_SENDER, "inbound": {"action": "PSTN"}})
    assert bad.status_code == 400 and "inbound.action" in bad.text
    missing = await platform.api.post(
        "/admin/1/senders", json={**NEW_SENDER, "phoneNumberId": "9", "inbound": {"action": "SUBSCRIPTION"}}
    )
    assert missing.status_code == 400 and "callsConfigurationId" in missing.text

    changed = {**NEW_SENDER, "inbound": {"action": "CALL_ROUTING", "routeId": "r1"}}
    assert (await platform.api.put("/admin/1/senders/555000111", json=changed)).status_code == 200
    one = (await platform.api.get("/admin/1/senders/555000111")).json()
    assert one["inbound"] == {"action": "CALL_ROUTING", "routeId": "r1"}
    queue = {**NEW_SENDER, "inbound": {"action": "CONTACT_CENTER", "queueId": "q-1"}}
    assert (await platform.api.put("/admin/1/senders/555000111", json=queue)).status_code == 200
    one = (await platform.api.get("/admin/1/senders/555000111")).json()
    assert one["inbound"] == {"action": "CONTACT_CENTER", "queueId": "q-1"}
    no_queue = {**NEW_SENDER, "inbound": {"action": "CONTACT_CENTER"}}
    refused = await platform.api.put("/admin/1/senders/555000111", json=no_queue)
    assert refused.status_code == 400 and "inbound.queueId" in refused.text
    by_number = await platform.api.get("/whatsapp/1/senders/15550001111/calls/15550001234/permissions")
    assert by_number.status_code == 200 and by_number.json()["status"] == "NO_PERMISSION"

    assert (await platform.api.delete("/admin/1/senders/555000111")).status_code == 204
    assert (await platform.api.get("/admin/1/senders/555000111")).status_code == 404


async def test_every_api_route_needs_a_key(platform: Platform) -> None:
    async with httpx.AsyncClient(base_url=platform.server.url) as anonymous:
        for path in (
            "/calls/1/calls",
            "/calls/1/configurations",
            "/admin/1/senders",
            "/subscriptions/1/subscription/VOICE_VIDEO",
            f"/whatsapp/1/senders/{PHONE_NUMBER_ID}/calls/1555/permissions",
        ):
            response = await anonymous.get(path)
            assert response.status_code == 401, path
            assert "requestError" in response.json()
        wrong = await anonymous.get("/calls/1/calls", headers={"Authorization": "App wrong-key"})
        assert wrong.status_code == 401


async def test_openapi_and_docs_are_served(platform: Platform) -> None:
    schema = (await platform.api.get("/openapi.json")).json()
    for path in (
        "/calls/1/calls",
        "/calls/1/calls/{callId}/answer",
        "/calls/1/dialogs",
        "/subscriptions/1/subscription/VOICE_VIDEO",
        "/admin/1/senders",
    ):
        assert path in schema["paths"], path
    docs = await platform.api.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


async def test_private_graph_api_urls_are_refused_unless_allowed(tmp_path: Path) -> None:
    async with running_platform(tmp_path, allow_private_urls=False) as platform:
        for url in (
            "http://127.0.0.1:9",
            "http://10.1.2.3",
            "http://[::1]:8080",
            "http://100.64.0.1",
            "http://[2002:7f00:1::1]",
            "http://[::ffff:127.0.0.1]",
        ):
            response = await platform.api.post("/admin/1/senders", json={**NEW_SENDER, "graphApiUrl": url})
            assert response.status_code == 400, url
            assert "graphApiUrl" in response.text and "private address" in response.text
