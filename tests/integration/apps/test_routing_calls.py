"""Routing calls at call time, on the running server with the WhatsApp channel's signalling and the media
engine faked at the edges (`support.calls_api_harness`): failover on an unavailable channel, a missing
call permission, busy and no answer; time windows; URL destinations (signed; a PHONE endpoint they name
is refused: no PSTN); application destinations; recordings through a route; the routed call hung up with
the last reason."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from support.calls_api_harness import (
    CONFIG_ID,
    SENDER_ID,
    SENDER_NUMBER,
    Harness,
    running_harness,
    running_receiver,
    serve,
)
from switchboard.core.control import InboundCall
from switchboard.core.models import (
    CallState,
    DialogState,
    Endpoint,
    EndpointType,
    ErrorCode,
    InboundAction,
    InboundTarget,
)

CALLER = "447700900123"
ANSWERER = "447700900555"
DAYS = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"]


def whatsapp(number: str, **extra: Any) -> dict[str, Any]:
    return {"type": "ENDPOINT", "value": {"type": "WHATSAPP", "phoneNumber": number}, **extra}


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    async with asyncio.timeout(10):
        while not await check():
            await asyncio.sleep(0.01)


async def add_route(h: Harness, destinations: list[dict[str, Any]], **body: Any) -> str:
    response = await h.client.post(
        "/callrouting/1/routes",
        json={
            "name": "r",
            "criteria": [{"value": {"type": "WHATSAPP"}}],
            "destinations": destinations,
            **body,
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def routed_call(h: Harness, route_id: str | None = None) -> str:
    call = await h.control.receive_inbound(
        InboundCall(
            endpoint=Endpoint(EndpointType.WHATSAPP, phone_number=CALLER),
            to=SENDER_NUMBER,
            peer_call_id=f"wacid.{uuid.uuid4().hex}",
            remote_offer="v=0\r\ns=caller offer\r\n",
            target=InboundTarget(InboundAction.CALL_ROUTING, route_id),
            sender_id=SENDER_ID,
        )
    )
    assert call is not None
    return call.id


def dialled(h: Harness) -> list[str]:
    return [call_id for op, call_id in h.channel.ops if op == "connect"]


async def next_dial(h: Harness, count: int) -> str:
    """The id of the `count`th call placed."""

    async def placed() -> bool:
        return len(dialled(h)) >= count

    await until(placed)
    return dialled(h)[count - 1]


async def ended(h: Harness, call_id: str) -> None:
    async def done() -> bool:
        return (await h.control.get_call(call_id)).state.is_final

    await until(done)


async def test_failover_to_the_endpoint_that_answers_and_the_bridge(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as h:
        await h.grant_permission(ANSWERER)
        await add_route(
            h,
            [
                {"type": "ENDPOINT", "value": {"type": "WEBRTC", "identity": "desk"}},
                whatsapp("447700900444"),  # no call permission
                whatsapp(ANSWERER),
            ],
        )
        parent = await routed_call(h)
        child_id = await next_dial(h, 1)
        child = await h.control.get_call(child_id)
        assert child.to == ANSWERER and child.parent_call_id == parent and child.from_ == SENDER_NUMBER
        assert ("accept", parent) not in h.channel.ops
        await h.control.remote_answered(child.peer_call_id or "", "v=0\r\ns=answer\r\n")

        async def bridged() -> bool:
            call = await h.control.get_call(parent)
            return call.state is CallState.ESTABLISHED and call.dialog_id is not None

        await until(bridged)
        dialog = await h.control.get_dialog((await h.control.get_call(parent)).dialog_id or "")
        assert dialog.child_call_id == child_id
        assert dialog.state is DialogState.ESTABLISHED
        assert len(dialled(h)) == 1
        await h.control.remote_hangup(child.peer_call_id or "")
        await ended(h, parent)


async def test_busy_and_no_answer_fail_over_and_the_last_reason_ends_the_call(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as h:
        for user in ("447700900111", "447700900222"):
            await h.grant_permission(user)
        await add_route(h, [whatsapp("447700900111"), whatsapp("447700900222", connectTimeout=1)])
        parent = await routed_call(h)
        first = await h.control.get_call(await next_dial(h, 1))
        await h.control.remote_hangup(first.peer_call_id or "", code=ErrorCode.BUSY, description="busy")
        second = await h.control.get_call(await next_dial(h, 2))
        assert second.to == "447700900222"
        await ended(h, second.id)  # no answer within connectTimeout
        await ended(h, parent)
        call = await h.control.get_call(parent)
        assert call.error is not None and call.error.code is ErrorCode.NO_ANSWER
        assert "destinations[1]" in call.error.description
        assert ("reject", parent) in h.channel.ops


async def test_time_windows_skip_a_destination_outside_them(tmp_path: Path) -> None:
    today = DAYS[datetime.now(UTC).weekday()]
    elsewhere = [d for d in DAYS if d not in (today, DAYS[(DAYS.index(today) - 1) % 7])]
    async with running_harness(tmp_path) as h:
        await h.grant_permission(ANSWERER)
        await add_route(
            h,
            [
                whatsapp("447700900111", allowedTimeWindows=[{"days": elsewhere}]),
                whatsapp(ANSWERER, allowedTimeWindows=[{"days": [today]}]),
            ],
        )
        await routed_call(h)
        child = await h.control.get_call(await next_dial(h, 1))
        assert child.to == ANSWERER


async def test_no_route_and_a_missing_named_route(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as h:
        parent = await routed_call(h)
        await ended(h, parent)
        call = await h.control.get_call(parent)
        assert call.error is not None and call.error.code is ErrorCode.DESTINATION_NOT_FOUND
        assert (
            await h.control.receive_inbound(
                InboundCall(
                    endpoint=Endpoint(EndpointType.WHATSAPP, phone_number=CALLER),
                    to=SENDER_NUMBER,
                    peer_call_id="wacid.missing-route",
                    remote_offer="v=0\r\n",
                    target=InboundTarget(InboundAction.CALL_ROUTING, "no-such-route"),
                    sender_id=SENDER_ID,
                )
            )
            is None
        )


async def test_a_url_destination_is_asked_signed_and_names_the_endpoint(tmp_path: Path) -> None:
    asked: list[tuple[dict[str, str], bytes]] = []
    app = FastAPI()

    @app.post("/next")
    async def next_destination(request: Request) -> JSONResponse:
        asked.append((dict(request.headers), await request.body()))
        return JSONResponse({"type": "ENDPOINT", "value": {"type": "WHATSAPP", "phoneNumber": ANSWERER}})

    @app.post("/phone")
    async def a_phone(request: Request) -> JSONResponse:
        return JSONResponse({"type": "ENDPOINT", "value": {"type": "PHONE", "phoneNumber": "447700900999"}})

    served = await serve(app)
    try:
        async with running_harness(tmp_path) as h:
            await h.grant_permission(ANSWERER)
            route_id = await add_route(
                h,
                [
                    {"type": "URL", "url": f"http://127.0.0.1:{served.port}/missing"},
                    {"type": "URL", "url": f"http://127.0.0.1:{served.port}/phone"},
                    {
                        "type": "URL",
                        "url": f"http://127.0.0.1:{served.port}/next",
                        "securityConfig": {"type": "HMAC", "secretKey": "k3y", "algorithm": "HMAC_SHA_256"},
                    },
                ],
            )
            parent = await routed_call(h)
            child = await h.control.get_call(await next_dial(h, 1))
            assert child.to == ANSWERER  # the PHONE endpoint named by a URL was refused: no PSTN
            assert len(dialled(h)) == 1
            ((headers, body),) = asked
            sent = json.loads(body)
            assert sent["applicationId"] == "CALL_ROUTING" and sent["routeId"] == route_id
            assert sent["callId"] == parent and sent["from"] == CALLER and sent["to"] == SENDER_NUMBER
            expected = "sha256=" + hmac.new(b"k3y", body, hashlib.sha256).hexdigest()
            assert headers["x-hmac-signature"] == expected
    finally:
        await served.stop()


async def test_an_application_destination_transfers_the_call(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as h, running_receiver() as (app, url):
        await h.subscribe(url, events=["APPLICATION_TRANSFER_REQUESTED", "APPLICATION_TRANSFER_FINISHED"])
        await add_route(
            h,
            [
                {
                    "type": "APPLICATION",
                    "value": {"type": "INFOBIP_APPLICATION", "applicationId": "CONVERSATIONS"},
                },
                {"type": "APPLICATION", "value": {"type": "CALLS_APPLICATION", "applicationId": "nope"}},
                {"type": "APPLICATION", "value": {"type": "CALLS_APPLICATION", "applicationId": CONFIG_ID}},
            ],
        )
        parent = await routed_call(h)
        requested = await app.wait_for("APPLICATION_TRANSFER_REQUESTED", parent)
        transfer_id = requested.json["properties"]["transferId"]
        response = await h.client.post(f"/calls/1/calls/{parent}/application-transfer/{transfer_id}/accept")
        assert response.status_code == 200, response.text
        await app.wait_for("APPLICATION_TRANSFER_FINISHED", parent)
        call = await h.control.get_call(parent)
        assert call.calls_configuration_id == CONFIG_ID
        assert [str(t) for t in call.targets] == ["CALL_ROUTING", f"SUBSCRIPTION:{CONFIG_ID}"]


async def test_recordings_of_routed_calls(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as h:
        await h.grant_permission(ANSWERER)
        route_id = await add_route(
            h, [whatsapp(ANSWERER, recording={"recordingType": "AUDIO", "customData": {"case": "42"}})]
        )
        parent = await routed_call(h)
        child = await h.control.get_call(await next_dial(h, 1))
        await h.control.remote_answered(child.peer_call_id or "", "v=0\r\ns=answer\r\n")

        async def bridged() -> bool:
            return (await h.control.get_call(parent)).dialog_id is not None

        await until(bridged)
        await h.control.remote_hangup(child.peer_call_id or "")
        await ended(h, parent)

        async def listed() -> bool:
            found = await h.client.get("/callrouting/1/recordings", params={"routeId": route_id})
            return bool(found.json()["results"])

        await until(listed)
        page = (await h.client.get("/callrouting/1/recordings", params={"phoneNumber": ANSWERER})).json()
        (result,) = page["results"]
        assert result["application"]["correlationId"] == parent
        assert result["application"]["routeId"] == route_id
        (recorded,) = result["recording"]["callRecordings"]
        assert recorded["callId"] == child.id and recorded["endpoint"] == "WHATSAPP"
        (file,) = recorded["files"]
        assert file["customData"] == {"case": "42"} and file["fileFormat"] == "WAV"
        download = await h.client.get(f"/callrouting/1/recordings/files/{file['id']}")
        assert download.status_code == 200 and download.content[:4] == b"RIFF"
        after = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
        none = await h.client.get("/callrouting/1/recordings", params={"startTimeAfter": after})
        assert none.json()["results"] == []
        deleted = await h.client.delete("/callrouting/1/recordings", params={"correlationId": parent})
        assert deleted.status_code == 200
        assert (await h.client.get(f"/callrouting/1/recordings/files/{file['id']}")).status_code == 404


async def test_the_caller_hanging_up_ends_the_destination_ringing(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as h:
        await h.grant_permission(ANSWERER)
        await add_route(
            h,
            [
                {
                    "type": "ENDPOINT",
                    "value": {"type": "WHATSAPP", "from": "15559999999", "phoneNumber": ANSWERER},
                },
                whatsapp(ANSWERER),
            ],
        )
        parent = await routed_call(h)
        child = await h.control.get_call(await next_dial(h, 1))
        assert child.from_ == SENDER_NUMBER  # the first destination's `from` is no sender of this server
        caller = await h.control.get_call(parent)
        await h.control.remote_hangup(caller.peer_call_id or "")
        await ended(h, child.id)
        assert ("terminate", child.id) in h.channel.ops
        assert len(dialled(h)) == 1
