"""The Meta emulator against a small fake business: real HTTP webhooks + a real aiortc business peer
(full ICE, controlling, `a=setup:active`), as the reference requires of a WhatsApp business."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from aiortc import RTCPeerConnection, RTCSessionDescription
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from switchboard.emulator import (
    AnswerPolicy,
    AudioOut,
    MetaEmulator,
    Recorder,
    dominant_frequency,
    place_call,
    restrict_host_addresses,
    serialize,
    sign,
    tone,
    verify,
    write_wav,
)
from switchboard.emulator.cli import build_parser
from switchboard.media.tones import read_wav

PNID = "106540352242922"
DISPLAY = "16315553601"
WABA = "102290129340398"
TOKEN = "EAAG-test-token"
SECRET = "app-secret-123"
USER = "16315553602"


class Business:
    """Webhook receiver (checks every signature) plus a Graph API client."""

    def __init__(self) -> None:
        self.app = FastAPI()
        self.webhooks: list[dict[str, Any]] = []
        self.bad_signatures = 0
        self.fail_next = 0
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.url = ""
        self.graph: httpx.AsyncClient | None = None

        @self.app.post("/webhook")
        async def webhook(request: Request) -> Response:
            raw = await request.body()
            if not verify(raw, request.headers.get("x-hub-signature-256"), SECRET):
                self.bad_signatures += 1
                return JSONResponse({}, status_code=403)
            if self.fail_next > 0:
                self.fail_next -= 1
                return JSONResponse({}, status_code=500)
            document = json.loads(raw)
            assert b"\\/" in raw or b"/" not in raw  # Meta escapes '/'
            self.webhooks.append(document)
            self.queue.put_nowait(document)
            return JSONResponse({})

    async def next(self, predicate: Any = None, timeout: float = 15.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                document = await self.queue.get()
                if predicate is None or predicate(document):
                    return document

    def auth(self, token: str = TOKEN) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    async def calls(self, body: dict[str, Any], token: str = TOKEN) -> httpx.Response:
        assert self.graph is not None
        body = {"messaging_product": "whatsapp", **body}
        return await self.graph.post(f"/v23.0/{PNID}/calls", json=body, headers=self.auth(token))


class BusinessPeer:
    """The business's media leg: aiortc, full ICE (controlling when it answers Meta's ICE-lite offer)."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection()
        self.audio = AudioOut()
        self.recorder: Recorder | None = None
        self.payload_types: list[int] = []
        self.dtmf_events: list[tuple[int, bool]] = []
        self.transceiver = self.pc.addTransceiver(self.audio, direction="sendrecv")
        self.pc.on("track", self._on_track)
        dtls = self.transceiver.receiver.transport
        original = dtls._handle_rtp_data

        async def tap(data: bytes, arrival_time_ms: int) -> None:
            pt = data[1] & 0x7F
            self.payload_types.append(pt)
            if pt == 126:
                self.dtmf_events.append((data[12], bool(data[13] & 0x80)))
            await original(data, arrival_time_ms)

        dtls._handle_rtp_data = tap

    def _on_track(self, track: Any) -> None:
        with tempfile.NamedTemporaryFile(suffix=".wav", delete=False) as file:
            self.recorder = Recorder(file.name)
        self.recorder.start(track)

    async def answer(self, offer: str) -> str:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        with restrict_host_addresses(["127.0.0.1"]):
            await self.pc.setLocalDescription(await self.pc.createAnswer())
        return str(self.pc.localDescription.sdp)

    async def offer(self) -> str:
        with restrict_host_addresses(["127.0.0.1"]):
            await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    @property
    def ice_role(self) -> str:
        return str(self.transceiver.sender.transport.transport.role)

    def heard(self) -> Any:
        assert self.recorder is not None
        return self.recorder.pcm()

    async def close(self) -> None:
        if self.recorder is not None:
            await self.recorder.stop()
            self.recorder.path.unlink(missing_ok=True)
        await self.pc.close()


@contextlib.asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    for _ in range(500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def env() -> AsyncIterator[tuple[Business, MetaEmulator]]:
    business = Business()
    async with serve(business.app) as port:
        business.url = f"http://127.0.0.1:{port}/webhook"
        emulator = MetaEmulator(business.url, webhook_retry_delays=(0.1, 0.2, 0.4))
        emulator.add_business_number(PNID, DISPLAY, WABA, TOKEN, SECRET)
        async with emulator, httpx.AsyncClient(base_url=emulator.graph_url, timeout=10) as graph:
            business.graph = graph
            yield business, emulator
    assert business.bad_signatures == 0


def is_call_event(event: str) -> Any:
    def predicate(document: dict[str, Any]) -> bool:
        value = document["entry"][0]["changes"][0]["value"]
        return any(c.get("event") == event for c in value.get("calls", []))

    return predicate


def is_status(status: str) -> Any:
    def predicate(document: dict[str, Any]) -> bool:
        value = document["entry"][0]["changes"][0]["value"]
        return any(s.get("status") == status for s in value.get("statuses", []))

    return predicate


def value_of(document: dict[str, Any]) -> dict[str, Any]:
    assert document["object"] == "whatsapp_business_account"
    entry = document["entry"][0]
    assert entry["id"] == WABA
    value: dict[str, Any] = entry["changes"][0]["value"]
    assert value["messaging_product"] == "whatsapp"
    assert value["metadata"] == {"display_phone_number": DISPLAY, "phone_number_id": PNID}
    return value


async def answer_user_call(
    business: Business, peer: BusinessPeer, *, meta_edge: bool = True
) -> tuple[str, str]:
    document = await business.next(is_call_event("connect"))
    assert document["entry"][0]["changes"][0]["field"] == "calls"
    value = value_of(document)
    assert value["contacts"][0]["wa_id"] == USER
    connect = value["calls"][0]
    assert connect["direction"] == "USER_INITIATED"
    assert (connect["from"], connect["to"]) == (USER, DISPLAY)
    offer = connect["session"]["sdp"]
    assert connect["session"]["sdp_type"] == "offer"
    assert "a=setup:actpass" in offer
    assert "UDP/TLS/RTP/SAVPF 111 126\r\n" in offer
    assert "a=rtpmap:111 opus/48000/2" in offer
    assert "a=rtpmap:126 telephone-event/8000" in offer
    if meta_edge:  # the aiortc user; a browser's offer is full ICE with its own fmtp
        assert "a=ice-lite\r\n" in offer
        assert "a=fmtp:111 minptime=10;useinbandfec=1" in offer
        assert "127.0.0.1" in offer
    answer = await peer.answer(offer)
    assert "a=setup:active" in answer
    return connect["id"], answer


async def test_user_initiated_call_media_dtmf_and_hangup(
    env: tuple[Business, MetaEmulator],
) -> None:
    business, emulator = env
    user = emulator.user(USER, name="Alice")
    peer = BusinessPeer()
    call = await user.call(PNID)
    call_id, answer = await answer_user_call(business, peer)
    assert call_id == call.call_id and call_id.startswith("wacid.")

    response = await business.calls(
        {"call_id": call_id, "action": "pre_accept", "session": {"sdp_type": "answer", "sdp": answer}}
    )
    assert response.json() == {"messaging_product": "whatsapp", "success": True}
    await call.wait_state("PRE_ACCEPTED")

    different = answer.replace("a=setup:active", "a=setup:active\r\na=ptime:20")
    response = await business.calls(
        {"call_id": call_id, "action": "accept", "session": {"sdp_type": "answer", "sdp": different}}
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == 100

    response = await business.calls(
        {"call_id": call_id, "action": "accept", "session": {"sdp_type": "answer", "sdp": answer}}
    )
    assert response.status_code == 200, response.text
    await call.wait_state("ACCEPTED")
    await call.wait_connected()
    assert peer.ice_role == "controlling"
    assert call._ice_connection().ice_controlling is False

    call.play_tone(1000)
    peer.audio.play_tone(600)
    await asyncio.sleep(2.5)
    assert abs(dominant_frequency(call.heard_pcm()[-24000:]) - 600) < 20
    assert abs(dominant_frequency(peer.heard()[-24000:]) - 1000) < 20

    await call.press("1#")
    assert 126 in peer.payload_types
    starts = [event for event, end in peer.dtmf_events if end]
    assert starts.count(1) == 3 and starts.count(11) == 3  # end bit sent three times

    await call.hang_up()
    terminate = value_of(await business.next(is_call_event("terminate")))["calls"][0]
    assert terminate["status"] == "COMPLETED" and terminate["id"] == call_id
    assert isinstance(terminate["duration"], int) and terminate["duration"] >= 2
    assert int(terminate["end_time"]) - int(terminate["start_time"]) == terminate["duration"]
    assert [action for action, _ in call.events] == ["pre_accept", "accept", "accept"]
    assert call.recording_path.exists()
    response = await business.calls({"call_id": call_id, "action": "terminate"})
    assert response.status_code == 400
    await peer.close()


async def test_business_terminates_and_unknown_call(env: tuple[Business, MetaEmulator]) -> None:
    business, emulator = env
    peer = BusinessPeer()
    call = await emulator.user(USER).call(PNID)
    call_id, answer = await answer_user_call(business, peer)
    response = await business.calls(
        {"call_id": call_id, "action": "accept", "session": {"sdp_type": "answer", "sdp": answer}}
    )
    assert response.status_code == 200
    await call.wait_connected()
    response = await business.calls({"call_id": call_id, "action": "terminate"})
    assert response.json()["success"] is True
    await call.wait_state("TERMINATED")
    terminate = value_of(await business.next(is_call_event("terminate")))["calls"][0]
    assert terminate["status"] == "COMPLETED"
    assert call.pc.connectionState == "closed"

    response = await business.calls({"call_id": "wacid.nope", "action": "terminate"})
    error = response.json()["error"]
    assert response.status_code == 400 and error["code"] == 100
    assert set(error) >= {"message", "type", "code", "fbtrace_id", "error_data"}
    response = await business.calls({"call_id": call_id, "action": "terminate"}, token="wrong")
    assert response.status_code == 401 and response.json()["error"]["code"] == 190
    await peer.close()


async def test_business_initiated_needs_permission(env: tuple[Business, MetaEmulator]) -> None:
    business, emulator = env
    user = emulator.user(USER, name="Bob")
    user.auto_tone = 800
    assert business.graph is not None
    peer = BusinessPeer()
    offer = await peer.offer()
    connect = {
        "to": USER,
        "action": "connect",
        "biz_opaque_callback_data": "order-42",
        "session": {"sdp_type": "offer", "sdp": offer},
    }
    response = await business.calls(connect)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == 138006
    assert set(error) == {"message", "type", "code", "error_subcode", "fbtrace_id", "error_data"}

    request = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": USER,
        "type": "interactive",
        "interactive": {
            "type": "call_permission_request",
            "action": {"name": "call_permission_request"},
            "body": {"text": "We would like to call you about your order."},
        },
    }
    path = f"/v23.0/{PNID}/messages"
    response = await business.graph.post(path, json=request, headers=business.auth())
    body = response.json()
    assert body["contacts"] == [{"input": USER, "wa_id": USER}]
    assert body["messages"][0]["id"].startswith("wamid.")
    response = await business.graph.post(path, json=request, headers=business.auth())
    assert response.status_code == 400 and response.json()["error"]["code"] == 138009
    bad = {**request, "interactive": {"type": "call_permission_request", "body": {"text": "x"}}}
    response = await business.graph.post(path, json=bad, headers=business.auth())
    assert response.json()["error"]["code"] == 100

    assert await user.reply_permission(PNID, accept=True)
    document = await business.next(lambda d: d["entry"][0]["changes"][0]["field"] == "messages")
    message = value_of(document)["messages"][0]
    assert message["type"] == "interactive" and message["from"] == USER
    reply = message["interactive"]["call_permission_reply"]
    assert message["interactive"]["type"] == "call_permission_reply"
    assert reply["response"] == "accept" and reply["is_permanent"] is False
    assert reply["response_source"] == "user_action" and "expiration_timestamp" in reply

    response = await business.graph.get(
        f"/v23.0/{PNID}/call_permissions", params={"user_wa_id": USER}, headers=business.auth()
    )
    state = response.json()
    assert state["permission"]["status"] == "temporary"
    assert state["actions"][0]["action_name"] == "send_call_permission_request"
    assert state["actions"][0]["limits"][0]["current_usage"] == 1

    response = await business.calls(connect)
    assert response.status_code == 200, response.text
    call_id = response.json()["calls"][0]["id"]
    assert response.json()["messaging_product"] == "whatsapp"
    ringing = value_of(await business.next(is_status("RINGING")))["statuses"][0]
    assert ringing["id"] == call_id and ringing["biz_opaque_callback_data"] == "order-42"
    assert ringing["type"] == "call" and ringing["recipient_id"] == USER
    value = value_of(await business.next(is_call_event("connect")))
    connect_event = value["calls"][0]
    assert connect_event["direction"] == "BUSINESS_INITIATED"
    assert (connect_event["to"], connect_event["from"]) == (USER, DISPLAY)
    assert connect_event["session"]["sdp_type"] == "answer"
    sdp = connect_event["session"]["sdp"]
    assert "a=ice-lite" in sdp and "a=setup:passive" in sdp
    await peer.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
    await business.next(is_status("ACCEPTED"))
    assert peer.ice_role == "controlling"
    await asyncio.sleep(2.0)
    assert abs(dominant_frequency(peer.heard()[-24000:]) - 800) < 20

    response = await business.calls({"call_id": call_id, "action": "terminate"})
    assert response.status_code == 200
    terminate = value_of(await business.next(is_call_event("terminate")))["calls"][0]
    assert terminate["status"] == "COMPLETED" and terminate["biz_opaque_callback_data"] == "order-42"
    # a connected call resets the request limits
    assert emulator.permission(USER, PNID).request_times == []
    await peer.close()


async def test_business_initiated_declined(env: tuple[Business, MetaEmulator]) -> None:
    business, emulator = env
    user = emulator.user(USER)
    user.answer = AnswerPolicy("decline", delay=0.1)
    emulator.permission(user, PNID).grant(permanent=True)
    peer = BusinessPeer()
    response = await business.calls(
        {"to": USER, "action": "connect", "session": {"sdp_type": "offer", "sdp": await peer.offer()}}
    )
    assert response.status_code == 200
    await business.next(is_status("RINGING"))
    await business.next(is_status("REJECTED"))
    terminate = value_of(await business.next(is_call_event("terminate")))["calls"][0]
    assert terminate["direction"] == "BUSINESS_INITIATED" and "duration" not in terminate
    await peer.close()


async def test_faults_retries_and_raw_webhooks(env: tuple[Business, MetaEmulator]) -> None:
    business, emulator = env
    peer = BusinessPeer()
    business.fail_next = 1  # the connect webhook is redelivered after a 500
    call = await emulator.user(USER).call(PNID)
    call_id, answer = await answer_user_call(business, peer)
    assert emulator.webhooks.deliveries[0].attempts == [500, 200]

    pre_accept = {
        "call_id": call_id,
        "action": "pre_accept",
        "session": {"sdp_type": "answer", "sdp": answer},
    }
    emulator.faults.fail_next("pre_accept", status=500)
    response = await business.calls(pre_accept)
    assert response.status_code == 500 and "error" in response.json()
    emulator.faults.hang_next("pre_accept", 1.0)
    assert business.graph is not None
    with pytest.raises(httpx.ReadTimeout):
        await business.graph.post(
            f"/v23.0/{PNID}/calls",
            json={"messaging_product": "whatsapp", **pre_accept},
            headers=business.auth(),
            timeout=0.3,
        )
    await asyncio.sleep(1.0)  # the hung request completes on the emulator's side
    assert "PRE_ACCEPTED" in call.states
    assert [r.path for r in emulator.requests].count(f"/v23.0/{PNID}/calls") == 2

    body = serialize({"object": "whatsapp_business_account", "entry": []})
    assert await emulator.webhooks.send_raw(body, sign(body, SECRET)) == 200
    assert await emulator.webhooks.send_raw(body, "sha256=00") == 403
    business.bad_signatures -= 1
    await call.hang_up()
    await peer.close()


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium")
async def test_phone_page_browser_call(env: tuple[Business, MetaEmulator], tmp_path: Path) -> None:
    """Chromium's own RTCPeerConnection is the WhatsApp user on /phone (fake mic plays 440 Hz)."""
    from playwright.async_api import async_playwright

    business, emulator = env
    wav = tmp_path / "mic.wav"
    write_wav(wav, tone(440, 5.0))
    peer = BusinessPeer()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=shutil.which("chromium"),
            args=[
                "--allow-loopback-in-peer-connection",
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={wav}",
                "--autoplay-policy=no-user-gesture-required",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
            env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")},
        )
        try:
            page = await browser.new_page()
            await page.goto(emulator.phone_url)
            await page.wait_for_selector(f"#number option[value='{PNID}']", state="attached")
            await page.fill("#wa_id", USER)
            await page.click("#call")
            call_id, answer = await answer_user_call(business, peer, meta_edge=False)
            response = await business.calls(
                {"call_id": call_id, "action": "accept", "session": {"sdp_type": "answer", "sdp": answer}}
            )
            assert response.status_code == 200
            await page.wait_for_function(
                "document.getElementById('call-state').textContent === 'accepted'"
                " && document.getElementById('media-state').textContent === 'connected'",
                timeout=15000,
            )
            await asyncio.sleep(2.0)
            assert abs(dominant_frequency(peer.heard()[-24000:]) - 440) < 20
            await page.click("#hangup")
            terminate = value_of(await business.next(is_call_event("terminate")))["calls"][0]
            assert terminate["id"] == call_id and terminate["status"] == "COMPLETED"
        finally:
            await browser.close()
            await peer.close()


async def test_cli_place_call_through_running_emulator(env: tuple[Business, MetaEmulator]) -> None:
    business, emulator = env
    peer = BusinessPeer()
    peer.audio.play_tone(700)
    placing = asyncio.ensure_future(
        place_call(emulator.graph_url, PNID, USER, tone=500, dtmf="1", dtmf_delay=0.2, seconds=1.5)
    )
    call_id, answer = await answer_user_call(business, peer)
    response = await business.calls(
        {"call_id": call_id, "action": "accept", "session": {"sdp_type": "answer", "sdp": answer}}
    )
    assert response.status_code == 200
    result = await asyncio.wait_for(placing, 30)
    assert result["call_id"] == call_id and result["end_status"] == "COMPLETED"
    assert result["graph_actions"] == ["accept"]
    assert result["heard_audible_seconds"] > 1.0
    assert abs(dominant_frequency(read_wav(result["recording"])[0][-24000:]) - 700) < 20
    assert abs(dominant_frequency(peer.heard()[-24000:]) - 500) < 20
    assert 126 in peer.payload_types
    await peer.close()


def test_cli_parser() -> None:
    args = build_parser().parse_args(
        ["call", "--to", PNID, "--from", USER, "--tone", "440", "--dtmf", "123#", "--seconds", "3"]
    )
    assert (args.to, args.from_, args.tone, args.dtmf, args.seconds) == (PNID, USER, 440, "123#", 3)
    args = build_parser().parse_args(["serve", "--webhook-url", "http://x/wh", "--numbers", "n.json"])
    assert (args.port, args.host) == (8090, "127.0.0.1")
