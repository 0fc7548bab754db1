import json

import httpx
import pytest

from switchboard.channels.whatsapp.graph import (
    DialOutcomeUnknown,
    GraphClient,
    GraphSettings,
    NoCallPermissionError,
)
from switchboard.channels.whatsapp.senders import Sender
from switchboard.core.errors import ChannelError
from switchboard.core.models import InboundAction, InboundTarget

SENDER = Sender(
    phone_number_id="100",
    display_phone_number="15550100",
    waba_id="900",
    access_token="token",
    app_secret="secret",
    verify_token="verify",
    graph_api_url="http://graph.test",
    inbound=InboundTarget(InboundAction.SUBSCRIPTION, "app"),
)
FAST = GraphSettings(version="v23.0", timeout_s=0.5, retries=2, backoff_s=0.001)


def client(handler: httpx.MockTransport) -> GraphClient:
    return GraphClient(httpx.AsyncClient(transport=handler), FAST)


async def test_pre_accept_posts_meta_body_with_bearer_token() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"messaging_product": "whatsapp", "success": True})

    await client(httpx.MockTransport(handle)).call_action(SENDER, "wacid.1", "pre_accept", "v=0\r\n")
    assert str(seen[0].url) == "http://graph.test/v23.0/100/calls"
    assert seen[0].headers["authorization"] == "Bearer token"
    assert json.loads(seen[0].content) == {
        "messaging_product": "whatsapp",
        "call_id": "wacid.1",
        "action": "pre_accept",
        "session": {"sdp_type": "answer", "sdp": "v=0\r\n"},
    }


async def test_5xx_and_timeouts_are_retried_then_succeed() -> None:
    outcomes: list[object] = [httpx.ReadTimeout("slow"), httpx.Response(500), None]

    def handle(request: httpx.Request) -> httpx.Response:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome if isinstance(outcome, httpx.Response) else httpx.Response(200, json={})

    await client(httpx.MockTransport(handle)).call_action(SENDER, "wacid.1", "accept", "v=0\r\n")
    assert outcomes == []


async def test_persistent_5xx_fails_with_a_clear_retryable_error() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(503))
    with pytest.raises(ChannelError, match=r"accept failed after 3 attempts \(HTTP 503\)") as info:
        await client(transport).call_action(SENDER, "wacid.1", "accept", "v=0\r\n")
    assert info.value.retryable


async def test_138006_becomes_no_permission() -> None:
    body = {"error": {"message": "No permission", "type": "OAuthException", "code": 138006}}
    transport = httpx.MockTransport(lambda request: httpx.Response(400, json=body))
    with pytest.raises(NoCallPermissionError, match="no approved call permission"):
        await client(transport).connect(SENDER, "15550001111", "v=0\r\n")


async def test_connect_returns_the_call_id() -> None:
    body = {"messaging_product": "whatsapp", "calls": [{"id": "wacid.XYZ"}]}
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=body))
    assert await client(transport).connect(SENDER, "15550001111", "v=0\r\n") == "wacid.XYZ"


@pytest.mark.parametrize(
    ("failure", "retried"),
    [
        (httpx.Response(429), True),
        (httpx.ConnectError("refused"), True),
        (httpx.Response(503), False),
        (httpx.ReadTimeout("no answer"), False),
        (httpx.RemoteProtocolError("dropped"), False),
    ],
)
async def test_connect_is_repeated_only_when_meta_cannot_have_seen_it(
    failure: httpx.Response | Exception, retried: bool
) -> None:
    attempts: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        attempts.append(request)
        if len(attempts) == 1:
            if isinstance(failure, Exception):
                raise failure
            return failure
        return httpx.Response(200, json={"calls": [{"id": "wacid.9"}]})

    graph = client(httpx.MockTransport(handle))
    if retried:
        assert await graph.connect(SENDER, "15550001", "v=0\r\n", callback_data="call-1") == "wacid.9"
        assert len(attempts) == 2
    else:
        with pytest.raises(DialOutcomeUnknown, match="outcome unknown"):
            await graph.connect(SENDER, "15550001", "v=0\r\n", callback_data="call-1")
        assert len(attempts) == 1, "a connect Meta may have received was sent again"
