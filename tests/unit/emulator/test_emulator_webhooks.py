from __future__ import annotations

import hashlib
import hmac
import json

import httpx

from switchboard.emulator import BusinessNumber, WebhookSender, envelope, serialize, sign, verify
from switchboard.emulator._webhooks import calls_value, contact, statuses_value

NUMBER = BusinessNumber("106540352242922", "16315553601", "102290129340398", "tok", "secret")


def test_envelope_shape() -> None:
    value = calls_value(
        NUMBER,
        [{"id": "wacid.X", "event": "connect"}],
        contacts=[contact("16315553602", "Alice")],
    )
    document = envelope(NUMBER, "calls", value)
    assert document == {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "16315553601",
                                "phone_number_id": "106540352242922",
                            },
                            "contacts": [{"profile": {"name": "Alice"}, "wa_id": "16315553602"}],
                            "calls": [{"id": "wacid.X", "event": "connect"}],
                        },
                        "field": "calls",
                    }
                ],
            }
        ],
    }


def test_statuses_value_has_no_calls() -> None:
    value = statuses_value(NUMBER, [{"id": "wacid.X", "type": "call", "status": "RINGING"}])
    assert "calls" not in value and value["statuses"][0]["status"] == "RINGING"


def test_serialize_escapes_slashes_and_non_ascii() -> None:
    body = serialize({"sdp": "a=fingerprint:sha-256 AB/CD", "name": "Zoë"})
    assert body == b'{"sdp":"a=fingerprint:sha-256 AB\\/CD","name":"Zo\\u00eb"}'
    assert json.loads(body) == {"sdp": "a=fingerprint:sha-256 AB/CD", "name": "Zoë"}


def test_signature_is_hmac_sha256_of_raw_body() -> None:
    body = serialize({"a": "b/c"})
    expected = hmac.new(b"secret", body, hashlib.sha256).hexdigest()
    assert sign(body, "secret") == "sha256=" + expected
    assert verify(body, "sha256=" + expected, "secret")
    assert not verify(json.dumps(json.loads(body)).encode(), "sha256=" + expected, "secret")
    assert not verify(body, None, "secret")


async def test_sender_retries_until_2xx() -> None:
    statuses = iter([503, 500, 200])
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(next(statuses))

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    sender = WebhookSender("http://business/webhook", client=client, retry_delays=(0, 0, 0))
    assert await sender.send(NUMBER, "calls", calls_value(NUMBER, [{"id": "wacid.X"}]))
    assert sender.deliveries[0].attempts == [503, 500, 200]
    assert len({r.content for r in seen}) == 1
    request = seen[0]
    assert request.headers["x-hub-signature-256"] == sign(request.content, "secret")
    await client.aclose()


async def test_sender_gives_up_and_send_raw_without_signature() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(500)

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    sender = WebhookSender("http://business/webhook", client=client, retry_delays=(0, 0))
    assert not await sender.send(NUMBER, "calls", calls_value(NUMBER, []))
    assert sender.deliveries[0].attempts == [500, 500, 500]
    assert await sender.send_raw(b'{"x":1}', None) == 500
    assert "x-hub-signature-256" not in seen[-1].headers
    await client.aclose()
