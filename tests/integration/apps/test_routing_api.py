"""The Call Routing API with raw JSON, against a running server: what the official SDK cannot read back
(WHATSAPP criteria and endpoints, APPLICATION destinations), the PSTN ban at save, validation naming the
field in the Call Routing error shape, and orders kept unique and dense."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from support.calls_api_harness import running_harness

ROUTES = "/callrouting/1/routes"
ERROR_KEYS = {"errorCode", "description", "action", "violations", "resources"}


def route(name: str, criteria: list[dict[str, Any]], destinations: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": name, "criteria": criteria, "destinations": destinations}


WHATSAPP_TO_APP = route(
    "whatsapp to the app",
    [
        {
            "to": "1555.*",
            "value": {"type": "WHATSAPP", "from": "44.*", "customData": [{"key": "vip", "value": "y.*"}]},
        }
    ],
    [
        {"type": "ENDPOINT", "value": {"type": "WEBRTC", "identity": "desk-1"}},
        {
            "type": "ENDPOINT",
            "value": {"type": "WHATSAPP", "from": "15550001111", "phoneNumber": "447700900999"},
        },
        {"type": "ENDPOINT", "value": {"type": "WEBSOCKET", "websocketEndpointConfigId": "bot"}},
        {"type": "APPLICATION", "value": {"type": "CALLS_APPLICATION", "applicationId": "my-app"}},
        {"type": "APPLICATION", "value": {"type": "INFOBIP_APPLICATION", "applicationId": "CONVERSATIONS"}},
    ],
)


async def create(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(ROUTES, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_raw_json_routes_keep_every_kind_and_type(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as h:
        created = await create(h.client, WHATSAPP_TO_APP)
        fetched = (await h.client.get(f"{ROUTES}/{created['id']}")).json()
        assert fetched == created
        assert fetched["criteria"][0]["value"] == WHATSAPP_TO_APP["criteria"][0]["value"]
        assert [d["type"] for d in fetched["destinations"]] == ["ENDPOINT"] * 3 + ["APPLICATION"] * 2
        assert [d["value"]["type"] for d in fetched["destinations"]] == [
            "WEBRTC",
            "WHATSAPP",
            "WEBSOCKET",
            "CALLS_APPLICATION",
            "INFOBIP_APPLICATION",
        ]
        assert fetched["status"] == "ENABLED" and fetched["order"] == 1

        async def simulate(endpoint: dict[str, Any], to: str = "15550001111") -> int:
            response = await h.client.post(f"{ROUTES}/simulate", json={"to": to, "endpoint": endpoint})
            return response.status_code

        vip = {"type": "WHATSAPP", "from": "447700900123", "customData": {"vip": "yes"}}
        assert await simulate(vip) == 200
        assert await simulate({**vip, "customData": {"vip": "no"}}) == 404
        assert await simulate({**vip, "from": "33612345678"}) == 404
        assert await simulate(vip, to="4930123") == 404
        assert await simulate({"type": "PHONE", "from": "447700900123"}) == 404


async def test_the_pstn_ban_is_enforced_when_a_route_is_saved(tmp_path: Path) -> None:
    phone = {"type": "ENDPOINT", "value": {"type": "PHONE", "phoneNumber": "447700900123"}}
    whatsapp = {"type": "ENDPOINT", "value": {"type": "WHATSAPP", "phoneNumber": "447700900123"}}
    async with running_harness(tmp_path) as h:
        refused = await h.client.post(
            ROUTES,
            json=route(
                "to pstn",
                [{"value": {"type": "SIP", "sipTrunkId": "t"}}, {"value": {"type": "WHATSAPP"}}],
                [whatsapp, phone],
            ),
        )
        assert refused.status_code == 400
        error = refused.json()
        assert set(error) == ERROR_KEYS
        assert "criteria[1] (WHATSAPP)" in error["description"]
        assert "destinations[1] is a PHONE endpoint" in error["description"]

        reverse = await h.client.post(
            ROUTES, json=route("from pstn", [{"value": {"type": "PHONE", "from": "44.*"}}], [whatsapp])
        )
        assert reverse.status_code == 400
        assert "criteria[0] (PHONE)" in reverse.json()["description"]
        assert "destinations[0] is a WHATSAPP endpoint" in reverse.json()["description"]

        catch_all = await h.client.post(ROUTES, json=route("everything", [], [phone]))
        assert catch_all.status_code == 400

        allowed = await h.client.post(
            ROUTES, json=route("sip to phone", [{"value": {"type": "SIP", "sipTrunkId": "t"}}], [phone])
        )
        assert allowed.status_code == 201, allowed.text


async def test_bad_routes_are_refused_naming_the_field(tmp_path: Path) -> None:
    endpoint = {"type": "ENDPOINT", "value": {"type": "SIP", "sipTrunkId": "pbx"}}
    async with running_harness(tmp_path) as h:
        cases = [
            (route("r", [{"value": {"type": "SIP", "username": "a[b"}}], [endpoint]), "username"),
            (
                route(
                    "r",
                    [{"value": {"type": "SIP", "headers": [{"headerName": "X-A", "headerValue": "(("}]}}],
                    [endpoint],
                ),
                "headerValue",
            ),
            (route("r", [{"value": {"type": "WEBRTC", "identity": "*x"}}], [endpoint]), "identity"),
            (route("r", [{"to": "+("}], [endpoint]), "to"),
            (route("r", [], [{**endpoint, "priority": 1}, endpoint]), "destinations[1].priority"),
            (route("r", [], []), "destinations"),
            (
                route("r", [], [{"type": "ENDPOINT", "value": {"type": "FAX"}}]),
                "destinations.0.ENDPOINT.value",
            ),
            (route("r", [], [{"type": "URL", "url": "ftp://example.test/x"}]), "destinations[0].url"),
            (
                route(
                    "r",
                    [],
                    [
                        {
                            **endpoint,
                            "allowedTimeWindows": [{"days": ["MONDAY"], "from": {"hour": 24, "minute": 0}}],
                        }
                    ],
                ),
                "hour",
            ),
        ]
        for body, field in cases:
            response = await h.client.post(ROUTES, json=body)
            assert response.status_code == 400, (body, response.text)
            error = response.json()
            assert set(error) == ERROR_KEYS
            assert field in error["description"], (field, error)
            assert error["violations"], error

        missing = await h.client.get(f"{ROUTES}/nope")
        assert missing.status_code == 404 and set(missing.json()) == ERROR_KEYS
        masked = await h.client.post(
            ROUTES,
            json=route(
                "r",
                [],
                [
                    {
                        "type": "URL",
                        "url": "http://127.0.0.1:9/next",
                        "securityConfig": {
                            "type": "HMAC",
                            "secretKey": "********",
                            "algorithm": "HMAC_SHA_256",
                        },
                    }
                ],
            ),
        )
        assert masked.status_code == 400
        assert "destinations[0].securityConfig.secretKey" in masked.json()["description"]


async def test_orders_stay_unique_and_dense(tmp_path: Path) -> None:
    endpoint = {"type": "ENDPOINT", "value": {"type": "SIP", "sipTrunkId": "pbx"}}
    async with running_harness(tmp_path) as h:
        ids = [(await create(h.client, route(f"r{i}", [], [endpoint])))["id"] for i in range(4)]

        async def orders() -> list[str]:
            page = (await h.client.get(ROUTES, params={"size": 100})).json()
            assert [r["order"] for r in page["results"]] == list(range(1, len(page["results"]) + 1))
            return [r["id"] for r in page["results"]]

        assert await orders() == ids
        moved = await h.client.patch(f"{ROUTES}/{ids[3]}", json={"order": 2})
        assert moved.json()["order"] == 2
        assert await orders() == [ids[0], ids[3], ids[1], ids[2]]
        last = await h.client.patch(f"{ROUTES}/{ids[0]}", json={"order": 99})
        assert last.json()["order"] == 4
        assert await orders() == [ids[3], ids[1], ids[2], ids[0]]
        assert (await h.client.delete(f"{ROUTES}/{ids[1]}")).status_code == 200
        assert await orders() == [ids[3], ids[2], ids[0]]
        bad = await h.client.patch(f"{ROUTES}/{ids[0]}", json={"order": 0})
        assert bad.status_code == 400 and "order" in bad.json()["description"]

        paged = (await h.client.get(ROUTES, params={"page": 1, "size": 2})).json()
        assert [r["id"] for r in paged["results"]] == [ids[0]]
        assert paged["paging"] == {"page": 1, "size": 2, "totalPages": 2, "totalResults": 3}


async def test_recordings_search_filters_and_pages_when_empty(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as h:
        found = await h.client.get(
            "/callrouting/1/recordings",
            params={"routeId": "r", "endpointType": "SIP", "sortBy": "START_TIME", "sortDirection": "ASC"},
        )
        assert found.status_code == 200
        assert found.json() == {
            "results": [],
            "paging": {"page": 0, "size": 20, "totalPages": 0, "totalResults": 0},
        }
        bad = await h.client.get("/callrouting/1/recordings", params={"endpointType": "FAX"})
        assert bad.status_code == 400 and set(bad.json()) == ERROR_KEYS
        assert (await h.client.get("/callrouting/1/recordings/files/nope")).status_code == 404
        assert (
            await h.client.delete("/callrouting/1/recordings", params={"correlationId": "x"})
        ).status_code == 404


async def test_concurrent_changes_keep_orders_unique_and_dense(tmp_path: Path) -> None:
    endpoint = {"type": "ENDPOINT", "value": {"type": "SIP", "sipTrunkId": "pbx"}}
    async with running_harness(tmp_path) as h:
        created = await asyncio.gather(*(create(h.client, route(f"r{i}", [], [endpoint])) for i in range(12)))
        ids = [c["id"] for c in created]
        changes = [h.client.patch(f"{ROUTES}/{ids[i]}", json={"order": 12 - i}) for i in range(0, 12, 2)]
        changes += [h.client.delete(f"{ROUTES}/{ids[i]}") for i in range(1, 12, 4)]
        changes += [h.client.post(ROUTES, json=route("late", [], [endpoint])) for _ in range(3)]
        responses = await asyncio.gather(*changes)
        assert all(r.status_code in (200, 201) for r in responses), [r.text for r in responses]
        page = (await h.client.get(ROUTES, params={"size": 100})).json()
        assert [r["order"] for r in page["results"]] == list(range(1, 12 - 3 + 3 + 1))
