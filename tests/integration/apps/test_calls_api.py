"""The Calls API over real HTTP: configurations, subscriptions, calls, actions and webhooks."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
from pathlib import Path

import httpx
import pytest

from support.calls_api_harness import (
    API_KEY,
    CALLER,
    CONFIG_ID,
    SENDER_NUMBER,
    reserve_socket,
    running_harness,
    running_receiver,
)
from switchboard.apps.calls_api import RetryPolicy
from switchboard.httpapi.urls import UrlPolicy

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$")


async def test_calls_configurations_crud(tmp_path: Path) -> None:
    async with running_harness(tmp_path, create_config=False) as h:
        c = h.client
        r = await c.post("/calls/1/configurations", json={"name": "Support line"})
        assert r.status_code == 201
        config = r.json()
        assert config["name"] == "Support line" and config["id"]
        r = await c.post("/calls/1/configurations", json={"id": "fixed-id", "name": "Sales"})
        assert r.status_code == 201 and r.json() == {"id": "fixed-id", "name": "Sales"}

        r = await c.get("/calls/1/configurations", params={"size": 1})
        page = r.json()
        assert r.status_code == 200 and len(page["results"]) == 1
        assert page["paging"] == {"page": 0, "size": 1, "totalPages": 2, "totalResults": 2}

        r = await c.put("/calls/1/configurations/fixed-id", json={"name": "Sales EU"})
        assert r.status_code == 200 and r.json()["name"] == "Sales EU"
        assert (await c.get("/calls/1/configurations/fixed-id")).json()["name"] == "Sales EU"

        r = await c.post("/calls/1/configurations", json={"name": "x" * 129})
        assert r.status_code == 400
        assert "name" in r.json()["requestError"]["serviceException"]["text"]

        assert (await c.delete("/calls/1/configurations/fixed-id")).status_code == 200
        r = await c.get("/calls/1/configurations/fixed-id")
        assert r.status_code == 404
        assert r.json()["requestError"]["serviceException"]["messageId"] == "NOT_FOUND"


async def test_subscription_crud_hides_secrets(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as h:
        c = h.client
        body = {
            "subscriptionId": "sub-1",
            "name": "my webhook",
            "events": ["CALL_RECEIVED"],
            "criteria": [{"callsConfigurationId": CONFIG_ID}],
            "profile": {
                "webhook": {"notifyUrl": "http://127.0.0.1:9/hook", "headers": {"X-App": "1"}},
                "security": {"type": "BASIC", "credentials": {"username": "u", "password": "p"}},
            },
        }
        r = await c.post("/subscriptions/1/subscription/VOICE_VIDEO", json=body)
        assert r.status_code == 201, r.text
        created = r.json()
        assert created["subscriptionId"] == "sub-1"
        assert created["profile"]["security"] == {"type": "BASIC", "credentials": {"username": "u"}}

        r = await c.get("/subscriptions/1/subscription/VOICE_VIDEO")
        assert [s["subscriptionId"] for s in r.json()["results"]] == ["sub-1"]

        body["events"] = ["CALL_RECEIVED", "CALL_FINISHED"]
        r = await c.put("/subscriptions/1/subscription/VOICE_VIDEO/sub-1", json=body)
        assert r.status_code == 200 and r.json()["events"] == ["CALL_RECEIVED", "CALL_FINISHED"]

        bad = dict(body, criteria=[{"callsConfigurationId": "nope"}])
        r = await c.post("/subscriptions/1/subscription/VOICE_VIDEO", json=bad)
        assert r.status_code == 400 and "nope" in r.text

        bad = {**body, "profile": {"webhook": {"notifyUrl": "ftp://example.com/x"}}}
        r = await c.post("/subscriptions/1/subscription/VOICE_VIDEO", json=bad)
        assert r.status_code == 400 and "notifyUrl" in r.text

        r = await c.delete("/subscriptions/1/subscription/VOICE_VIDEO/sub-1")
        assert r.status_code == 204
        r = await c.get("/subscriptions/1/subscription/VOICE_VIDEO/sub-1")
        assert r.status_code == 404


async def test_private_notify_url_refused_unless_allowed(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as h:
        h.api._ctx.urls = UrlPolicy()
        r = await h.client.post(
            "/subscriptions/1/subscription/VOICE_VIDEO",
            json={
                "name": "n",
                "events": ["CALL_RECEIVED"],
                "criteria": [{"callsConfigurationId": CONFIG_ID}],
                "profile": {"webhook": {"notifyUrl": "http://127.0.0.1:8080/hook"}},
            },
        )
        assert r.status_code == 400
        assert "private address" in r.json()["requestError"]["serviceException"]["text"]


async def test_inbound_call_answer_say_capture_hangup(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as h, running_receiver() as (receiver, url):
        await h.subscribe(url)
        c = h.client
        call_id = await h.inbound_call()

        received = (await receiver.wait_for("CALL_RECEIVED", call_id)).json
        assert set(received) == {
            "type",
            "callId",
            "conferenceId",
            "dialogId",
            "callsConfigurationId",
            "platform",
            "timestamp",
            "properties",
        }
        assert received["callsConfigurationId"] == CONFIG_ID
        assert TIME.match(received["timestamp"])
        call = received["properties"]["call"]
        assert call["id"] == call_id and call["state"] == "CALLING"
        assert call["direction"] == "INBOUND"
        assert call["endpoint"] == {"type": "WHATSAPP", "phoneNumber": CALLER}
        assert call["to"] == SENDER_NUMBER

        r = await c.post(f"/calls/1/calls/{call_id}/answer", json={})
        assert r.status_code == 200 and r.json()["status"] == "PENDING"
        established = (await receiver.wait_for("CALL_ESTABLISHED", call_id)).json
        assert established["properties"]["call"]["state"] == "ESTABLISHED"
        assert ("accept", call_id) in h.channel.ops

        r = await c.get("/calls/1/calls")
        assert [x["id"] for x in r.json()["results"]] == [call_id]
        live = (await c.get(f"/calls/1/calls/{call_id}")).json()
        assert live["mediaDiagnostics"]["iceState"] == "completed"
        assert live["media"]["audio"]["muted"] is False

        r = await c.post(
            f"/calls/1/calls/{call_id}/say",
            json={"text": "Hello", "language": "en", "preferences": {"voiceGender": "FEMALE"}},
        )
        assert r.status_code == 200, r.text
        assert h.tts.said == ["Hello"]
        h.leg(call_id).finish_playback(1500)
        said = (await receiver.wait_for("SAY_FINISHED", call_id)).json["properties"]
        assert said["duration"] == 1500 and said["playedCompletely"] is True

        r = await c.post(
            f"/calls/1/calls/{call_id}/capture/dtmf",
            json={"maxLength": 5, "timeout": 10000, "terminator": "#"},
        )
        assert r.status_code == 200, r.text
        h.leg(call_id).press("123#")
        captured = (await receiver.wait_for("DTMF_CAPTURED", call_id)).json["properties"]
        assert captured["dtmf"] == "123" and captured["timeout"] is False

        await asyncio.sleep(1.05)
        r = await c.post(f"/calls/1/calls/{call_id}/hangup", json={})
        assert r.status_code == 200 and r.json()["state"] == "FINISHED"
        finished = (await receiver.wait_for("CALL_FINISHED", call_id)).json
        log = finished["properties"]["callLog"]
        assert isinstance(log["duration"], int) and log["duration"] >= 1
        assert log["hangupSource"] == "API" and log["errorCode"]["name"] == "NORMAL_HANGUP"
        assert log["state"] == "FINISHED"
        for key in ("startTime", "answerTime", "endTime"):
            assert TIME.match(log[key])

        r = await c.get(f"/calls/1/calls/{call_id}")
        assert r.status_code == 200 and r.json()["state"] == "FINISHED"
        assert (await c.get("/calls/1/calls")).json()["results"] == []
        history = (await c.get("/calls/1/calls/history")).json()
        assert [x["callId"] for x in history["results"]] == [call_id]
        assert (await c.get(f"/calls/1/calls/{call_id}/history")).json()["duration"] >= 1

        r = await c.post(f"/calls/1/calls/{call_id}/say", json={"text": "x", "language": "en"})
        assert r.status_code == 400
        assert "FINISHED" in r.json()["requestError"]["serviceException"]["text"]
        assert receiver.types(call_id) == [
            "CALL_RECEIVED",
            "CALL_ESTABLISHED",
            "SAY_FINISHED",
            "DTMF_CAPTURED",
            "CALL_FINISHED",
        ]


async def test_errors_in_infobip_shape(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as h:
        r = await h.client.get("/calls/1/calls", headers={"Authorization": "App wrong"})
        assert r.status_code == 401
        assert r.json()["requestError"]["serviceException"]["messageId"] == "UNAUTHORIZED"
        async with httpx.AsyncClient(base_url=h.base_url) as anonymous:
            assert (await anonymous.get("/calls/1/configurations")).status_code == 401

        r = await h.client.get("/calls/1/calls/no-such-call")
        assert r.status_code == 404
        assert "no-such-call" in r.json()["requestError"]["serviceException"]["text"]
        r = await h.client.post("/calls/1/calls/no-such-call/answer", json={})
        assert r.status_code == 404

        call_id = await h.inbound_call()
        r = await h.client.post(f"/calls/1/calls/{call_id}/capture/dtmf", json={"timeout": 1000})
        assert r.status_code == 400
        assert "maxLength" in r.json()["requestError"]["serviceException"]["text"]
        r = await h.client.post(
            "/calls/1/calls",
            json={"endpoint": {"type": "WHATSAPP"}, "callsConfigurationId": CONFIG_ID},
        )
        assert r.status_code == 400 and "phoneNumber" in r.text
        r = await h.client.post(
            "/calls/1/calls",
            json={
                "endpoint": {"type": "WHATSAPP", "phoneNumber": CALLER},
                "from": SENDER_NUMBER,
                "callsConfigurationId": CONFIG_ID,
                "connectTimeout": 61,
            },
        )
        assert r.status_code == 400 and "connectTimeout" in r.text


async def test_outbound_calls_policy(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as h:
        r = await h.client.post(
            "/calls/1/calls",
            json={
                "endpoint": {"type": "PHONE", "phoneNumber": "447700900999"},
                "from": SENDER_NUMBER,
                "callsConfigurationId": CONFIG_ID,
            },
        )
        assert r.status_code == 403
        assert "PSTN" in r.json()["requestError"]["serviceException"]["text"]

        request = {
            "endpoint": {"type": "WHATSAPP", "phoneNumber": CALLER},
            "from": SENDER_NUMBER,
            "callsConfigurationId": CONFIG_ID,
        }
        r = await h.client.post("/calls/1/calls", json=request)
        assert r.status_code == 403 and "permission" in r.text

        await h.grant_permission(CALLER)
        r = await h.client.post("/calls/1/calls", json=request)
        assert r.status_code == 201, r.text
        call = r.json()
        assert call["direction"] == "OUTBOUND" and call["state"] == "CALLING"
        assert call["from"] == SENDER_NUMBER
        assert ("connect", call["id"]) in h.channel.ops

        written = {**request, "endpoint": {"type": "WHATSAPP", "phoneNumber": f"+{CALLER[:2]} {CALLER[2:]}"}}
        r = await h.client.post("/calls/1/calls", json={**written, "from": f"+{SENDER_NUMBER}"})
        assert r.status_code == 201, f"a granted user written with + and a space was refused: {r.text}"
        assert r.json()["to"] == CALLER


async def test_undelivered_events_wait_for_the_receiver_in_order(tmp_path: Path) -> None:
    retry = RetryPolicy(base_delay=0.05, max_delay=0.1, give_up_after=60, timeout=1)
    sock = reserve_socket()
    down_url = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    async with (
        running_harness(tmp_path, retry=retry) as h,
        running_receiver() as (other, other_url),
    ):
        await h.subscribe(down_url)
        await h.subscribe(other_url)
        call_id = await h.inbound_call()
        await h.client.post(f"/calls/1/calls/{call_id}/answer", json={})
        await h.client.post(f"/calls/1/calls/{call_id}/hangup", json={})
        # the reachable application is not held up by the unreachable one
        await other.wait_for("CALL_FINISHED", call_id, within=3)
        await asyncio.sleep(0.5)
        async with running_receiver(sock) as (late, _):
            await late.wait_for("CALL_FINISHED", call_id, within=5)
            assert late.types(call_id) == ["CALL_RECEIVED", "CALL_ESTABLISHED", "CALL_FINISHED"]


async def test_hmac_signature_verifies(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as h, running_receiver() as (receiver, url):
        secret = "s3cr3t-key"
        await h.subscribe(
            url,
            security={"type": "HMAC", "credentials": {"secretKey": secret, "algorithm": "HMAC_SHA_256"}},
        )
        call_id = await h.inbound_call()
        got = await receiver.wait_for("CALL_RECEIVED", call_id)
        expected = "sha256=" + hmac.new(secret.encode(), got.raw, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(got.headers["x-hmac-signature"], expected)
        assert got.headers["x-signature"] == expected
        assert got.headers["x-timestamp"].isdigit()
        assert got.headers["content-type"] == "application/json"


async def test_basic_auth_on_webhooks(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as h, running_receiver() as (receiver, url):
        await h.subscribe(
            url, security={"type": "BASIC", "credentials": {"username": "app", "password": "pw"}}
        )
        call_id = await h.inbound_call()
        got = await receiver.wait_for("CALL_RECEIVED", call_id)
        assert got.headers["authorization"] == "Basic YXBwOnB3"


async def test_files_play_and_recordings(tmp_path: Path) -> None:
    wav = tmp_path / "prompt.wav"
    import wave

    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x00" * 16000)
    async with running_harness(tmp_path) as h, running_receiver() as (receiver, url):
        await h.subscribe(url)
        c = h.client
        r = await c.post("/calls/1/files", files={"file": ("prompt.wav", wav.read_bytes(), "audio/wav")})
        assert r.status_code == 200, r.text
        f = r.json()
        assert f["name"] == "prompt.wav" and f["fileFormat"] == "WAV" and f["duration"] == 2
        assert (await c.get("/calls/1/files")).json()["paging"]["totalResults"] == 1

        call_id = await h.inbound_call()
        await c.post(f"/calls/1/calls/{call_id}/answer", json={})
        r = await c.post(
            f"/calls/1/calls/{call_id}/play", json={"content": {"type": "FILE", "fileId": f["id"]}}
        )
        assert r.status_code == 200, r.text
        source, _ = h.leg(call_id).playing or (None, None)
        assert source is not None and str(source.path).endswith(".wav")  # type: ignore[union-attr]
        h.leg(call_id).finish_playback()
        await receiver.wait_for("PLAY_FINISHED", call_id)

        r = await c.post(f"/calls/1/calls/{call_id}/start-recording", json={"recordingType": "AUDIO"})
        assert r.status_code == 200, r.text
        await c.post(f"/calls/1/calls/{call_id}/stop-recording", json={})
        ready = (await receiver.wait_for("CALL_RECORDING_READY", call_id)).json
        rec_file = ready["properties"]["recording"]["files"][0]
        r = await c.get(f"/calls/1/recordings/calls/{call_id}")
        assert r.status_code == 200 and r.json()["files"][0]["id"] == rec_file["id"]
        r = await c.get(f"/calls/1/recordings/files/{rec_file['id']}")
        assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
        assert r.content.startswith(b"RIFF")
        assert (await c.delete(f"/calls/1/recordings/files/{rec_file['id']}")).status_code == 200
        assert (await c.get(f"/calls/1/recordings/calls/{call_id}")).status_code == 404

        assert (await c.delete(f"/calls/1/files/{f['id']}")).status_code == 200
        assert (await c.get(f"/calls/1/files/{f['id']}")).status_code == 404
        await c.post(f"/calls/1/calls/{call_id}/hangup", json={})


async def test_openapi_documents_the_routes(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as h:
        async with httpx.AsyncClient(base_url=h.base_url) as c:
            spec = (await c.get("/openapi.json")).json()
        assert "/calls/1/calls/{callId}/say" in spec["paths"]
        assert "SayRequest" in spec["components"]["schemas"]
        assert "/subscriptions/1/subscription/VOICE_VIDEO" in spec["paths"]


@pytest.mark.parametrize("key", [API_KEY])
async def test_basic_api_key_is_accepted(tmp_path: Path, key: str) -> None:
    async with (
        running_harness(tmp_path) as h,
        httpx.AsyncClient(base_url=h.base_url, auth=("user", key)) as c,
    ):
        assert (await c.get("/calls/1/configurations")).status_code == 200


async def test_dialog_with_a_new_whatsapp_call(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as h, running_receiver() as (receiver, url):
        await h.subscribe(
            url, events=["CALL_RECEIVED", "DIALOG_CREATED", "DIALOG_ESTABLISHED", "DIALOG_FINISHED"]
        )
        other = "447700900555"
        await h.grant_permission(other)
        parent_id = await h.inbound_call()
        r = await h.client.post(
            "/calls/1/dialogs",
            json={
                "parentCallId": parent_id,
                "childCallRequest": {
                    "endpoint": {"type": "WHATSAPP", "phoneNumber": other},
                    "from": SENDER_NUMBER,
                },
            },
        )
        assert r.status_code == 201, r.text
        dialog = r.json()
        assert dialog["state"] == "CREATED" and dialog["parentCall"]["id"] == parent_id
        child_id = dialog["childCall"]["id"]
        await receiver.wait_for("DIALOG_CREATED", parent_id)
        listed = (await h.client.get("/calls/1/dialogs")).json()
        assert [d["id"] for d in listed["results"]] == [dialog["id"]]

        child = await h.control.get_call(child_id)
        assert child.peer_call_id is not None
        await h.control.remote_answered(child.peer_call_id, "v=0\r\ns=answer\r\n")
        established = (await receiver.wait_for("DIALOG_ESTABLISHED", parent_id)).json
        assert established["dialogId"] == dialog["id"]
        parent = (await h.client.get(f"/calls/1/calls/{parent_id}")).json()
        assert parent["state"] == "ESTABLISHED"

        r = await h.client.post(f"/calls/1/dialogs/{dialog['id']}/hangup")
        assert r.status_code == 200 and r.json()["state"] == "FINISHED"
        await receiver.wait_for("DIALOG_FINISHED", parent_id)
        assert (await h.client.get("/calls/1/dialogs")).json()["results"] == []


async def test_outbox_gives_up_and_moves_on(tmp_path: Path) -> None:
    retry = RetryPolicy(base_delay=0.05, max_delay=0.05, give_up_after=0.3, timeout=1)
    sock = reserve_socket()
    down_url = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    async with running_harness(tmp_path, retry=retry) as h:
        await h.subscribe(down_url)
        call_id = await h.inbound_call()
        await asyncio.sleep(0.8)
        await h.client.post(f"/calls/1/calls/{call_id}/answer", json={})
        async with running_receiver(sock) as (late, _):
            await late.wait_for("CALL_ESTABLISHED", call_id, within=5)
            assert late.types(call_id) == ["CALL_ESTABLISHED"]


async def test_pending_rows_survive_a_restart(tmp_path: Path) -> None:
    sock = reserve_socket()
    down_url = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    async with running_harness(tmp_path) as h:
        await h.subscribe(down_url)
        call_id = await h.inbound_call()
        await asyncio.sleep(0.2)
    # a new process on the same database and files
    async with running_harness(tmp_path, create_config=False) as h2, running_receiver(sock) as (late, _):
        got = await late.wait_for("CALL_RECEIVED", call_id, within=5)
        assert got.json["callId"] == call_id
        assert h2.api is not None


async def test_other_actions(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as h, running_receiver() as (receiver, hook_url):
        await h.subscribe(hook_url, events=["CALL_PRE_ESTABLISHED", "PLAY_FINISHED", "CALL_RINGING"])
        c = h.client
        call_id = await h.inbound_call()
        assert (await c.post(f"/calls/1/calls/{call_id}/send-ringing")).status_code == 200
        await receiver.wait_for("CALL_RINGING", call_id)
        r = await c.post(f"/calls/1/calls/{call_id}/pre-answer", json={})
        assert r.status_code == 200, r.text
        await receiver.wait_for("CALL_PRE_ESTABLISHED", call_id)
        assert ("pre_accept", call_id) in h.channel.ops
        r = await c.post(f"/calls/1/calls/{call_id}/answer")
        assert r.status_code == 200, r.text

        audio_url = hook_url.replace("/hook", "/audio.wav")
        for _ in range(2):
            r = await c.post(
                f"/calls/1/calls/{call_id}/play",
                json={"content": {"type": "URL", "fileUrl": audio_url}, "loopCount": 2},
            )
            assert r.status_code == 200, r.text
        assert receiver.audio_fetches == 1, "the URL is fetched once and cached"
        playing = h.leg(call_id).playing
        assert playing is not None and "url-cache" in str(playing[0].path)  # type: ignore[union-attr]
        assert (await c.post(f"/calls/1/calls/{call_id}/stop-play", json={})).status_code == 200
        stopped = await receiver.wait_for("PLAY_FINISHED", call_id)
        assert stopped.json["properties"]["playedCompletely"] is False

        r = await c.post(f"/calls/1/calls/{call_id}/send-dtmf", json={"dtmf": "12#"})
        assert r.status_code == 200 and h.leg(call_id).sent_dtmf == ["12#"]
        r = await c.post(f"/calls/1/calls/{call_id}/send-dtmf", json={"dtmf": "x"})
        assert r.status_code == 400 and "dtmf" in r.text

        r = await c.post(f"/calls/1/calls/{call_id}/hangup", json={"errorCode": "NOT_A_CODE"})
        assert r.status_code == 400 and "errorCode" in r.text
        r = await c.post(f"/calls/1/calls/{call_id}/hangup", json={"errorCode": "BUSY"})
        assert r.status_code == 200
