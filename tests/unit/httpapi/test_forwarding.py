"""A call's API requests on a node that does not carry the call go to the node that does (same method,
path, query, key and body); a dead carrier gives a 503 that says the call is being ended."""

from __future__ import annotations

import json
from typing import Any

import httpx
from fastapi import FastAPI, Request

from switchboard.core.nodes import CallOwner
from switchboard.httpapi.auth import ApiKey, Scope, api_key_check
from switchboard.httpapi.forwarding import FORWARDED_BY, ForwardingMiddleware

KEY = "k" * 20


class Owners:
    node_id = "node-a"

    def __init__(self, calls: dict[str, CallOwner], dialogs: dict[str, CallOwner] | None = None) -> None:
        self.calls = calls
        self.dialogs = dialogs or {}
        self.asked: list[str] = []

    async def of_call(self, call_id: str) -> CallOwner | None:
        self.asked.append(call_id)
        return self.calls.get(call_id)

    async def of_peer_call(self, peer_call_id: str, call_hint: str | None) -> CallOwner | None:
        return None

    async def of_dialog(self, dialog_id: str) -> CallOwner | None:
        return self.dialogs.get(dialog_id)


def local_app() -> FastAPI:
    app = FastAPI()

    @app.post("/calls/1/calls/{call_id}/say")
    async def say(call_id: str) -> dict[str, str]:
        return {"answeredBy": "local", "callId": call_id}

    @app.get("/calls/1/calls/{call_id}")
    async def get_call(call_id: str) -> dict[str, str]:
        return {"answeredBy": "local"}

    @app.get("/calls/1/calls/history")
    async def history() -> dict[str, str]:
        return {"answeredBy": "local"}

    @app.post("/calls/1/dialogs")
    async def create_dialog(request: Request) -> dict[str, Any]:
        return {"answeredBy": "local", "body": await request.json()}

    @app.post("/calls/1/dialogs/{dialog_id}/hangup")
    async def hangup(dialog_id: str) -> dict[str, str]:
        return {"answeredBy": "local"}

    return app


def client(
    owners: Owners, seen: list[httpx.Request], live: frozenset[str] = frozenset()
) -> httpx.AsyncClient:
    async def remote(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"answeredBy": "node-b"}, headers={"X-Remote": "yes"})

    middleware = ForwardingMiddleware(
        local_app(),
        owners=owners,
        http=httpx.AsyncClient(transport=httpx.MockTransport(remote)),
        is_local=lambda call_id: call_id in live,
        authorized=api_key_check([ApiKey.of(KEY, ["application"])], Scope.APPLICATION),
    )
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=middleware),
        base_url="http://node-a",
        headers={"Authorization": f"App {KEY}"},
    )


B = CallOwner("node-b", "http://10.0.0.2:8080", alive=True)


async def test_an_action_on_a_call_of_another_node_is_answered_by_that_node() -> None:
    seen: list[httpx.Request] = []
    async with client(Owners({"c1": B}), seen) as api:
        answer = await api.post("/calls/1/calls/c1/say?x=1", json={"text": "hi", "language": "en"})
    assert answer.status_code == 200 and answer.json() == {"answeredBy": "node-b"}
    assert answer.headers["x-remote"] == "yes"
    (sent,) = seen
    assert str(sent.url) == "http://10.0.0.2:8080/calls/1/calls/c1/say?x=1"
    assert sent.method == "POST" and json.loads(sent.content) == {"text": "hi", "language": "en"}
    assert sent.headers["authorization"] == f"App {KEY}"
    assert sent.headers[FORWARDED_BY] == "node-a"


async def test_a_dialog_goes_to_the_node_of_its_parent_call() -> None:
    seen: list[httpx.Request] = []
    async with client(Owners({}, {"d1": B}), seen) as api:
        answer = await api.post("/calls/1/dialogs/d1/hangup")
    assert answer.json() == {"answeredBy": "node-b"} and seen[0].url.path == "/calls/1/dialogs/d1/hangup"


async def test_a_new_dialog_goes_to_the_node_of_its_parent_call() -> None:
    seen: list[httpx.Request] = []
    body = {"parentCallId": "c1", "childCallRequest": {"endpoint": {"type": "WEBRTC"}}}
    async with client(Owners({"c1": B}), seen) as api:
        forwarded = await api.post("/calls/1/dialogs", json=body)
        local = await api.post("/calls/1/dialogs", json={**body, "parentCallId": "here"})
    assert forwarded.json() == {"answeredBy": "node-b"} and json.loads(seen[0].content) == body
    assert local.json() == {"answeredBy": "local", "body": {**body, "parentCallId": "here"}}, (
        "the body read to find the parent call reaches the local route whole"
    )


async def test_a_dead_carrier_gets_a_503_naming_it() -> None:
    seen: list[httpx.Request] = []
    dead = CallOwner("node-b", "http://10.0.0.2:8080", alive=False)
    async with client(Owners({"c1": dead}), seen) as api:
        answer = await api.post("/calls/1/calls/c1/say", json={})
    assert answer.status_code == 503 and not seen
    text = answer.json()["requestError"]["serviceException"]["text"]
    assert "node-b" in text and "being ended" in text
    async with client(Owners({"c1": dead}), seen) as api:
        read = await api.get("/calls/1/calls/c1")
    assert read.json() == {"answeredBy": "local"} and not seen, "a read is answered from the database"


async def test_nothing_is_forwarded_for_local_calls_bad_keys_or_forwarded_requests() -> None:
    seen: list[httpx.Request] = []
    owners = Owners({"c1": B, "c2": B})
    async with client(owners, seen, live={"c1"}) as api:
        local = await api.post("/calls/1/calls/c1/say", json={})
        assert local.json()["answeredBy"] == "local" and owners.asked == []
        unkeyed = await api.post("/calls/1/calls/c2/say", json={}, headers={"Authorization": "App wrong"})
        assert unkeyed.json()["answeredBy"] == "local"
        again = await api.post("/calls/1/calls/c2/say", json={}, headers={FORWARDED_BY: "node-c"})
        assert again.json()["answeredBy"] == "local"
        history = await api.get("/calls/1/calls/history")
        assert history.json()["answeredBy"] == "local"
    assert not seen
