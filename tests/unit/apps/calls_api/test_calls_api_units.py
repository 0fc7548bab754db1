"""Pure parts of the Calls API: time format, event names, envelopes, signing, backoff, uploads."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta, timezone

from starlette.requests import Request
from starlette.types import Message

from switchboard.apps.calls_api.files import received_file, sniff_format
from switchboard.apps.calls_api.mapping import envelope, event_name
from switchboard.apps.calls_api.outbox import RetryPolicy, auth_headers, sign
from switchboard.apps.calls_api.schemas import format_time
from switchboard.core import events as ev
from switchboard.core.models import Call, Direction, Endpoint, EndpointType

T0 = datetime(2026, 1, 1, 10, 0, 0, 123456, tzinfo=UTC)


def call() -> Call:
    c = Call(
        id="c1",
        endpoint=Endpoint(EndpointType.WHATSAPP, phone_number="4477"),
        direction=Direction.INBOUND,
        from_="4477",
        to="1555",
        calls_configuration_id="app",
        start_time=T0,
    )
    return c


def test_time_format_is_infobips() -> None:
    assert format_time(T0) == "2026-01-01T10:00:00.123+0000"
    cet = timezone(timedelta(hours=1))
    assert format_time(datetime(2026, 1, 1, 11, 0, tzinfo=cet)) == "2026-01-01T10:00:00.000+0000"


def test_event_names_and_internal_events() -> None:
    assert event_name(ev.CallReceived(call=call(), timestamp=T0)) == "CALL_RECEIVED"
    say = ev.SayFinished(call=call(), timestamp=T0, operation_id="p", duration_ms=5, completed=True)
    assert event_name(say) == "SAY_FINISHED"
    assert event_name(ev.DtmfReceived(call=call(), timestamp=T0, digit="1", duration_ms=9)) is None


def test_finished_envelope_has_call_log_with_integer_duration() -> None:
    c = call()
    c.answer_time = T0
    c.end_time = T0 + timedelta(seconds=7, milliseconds=900)
    body = envelope(ev.CallFinished(call=c, timestamp=T0), "CALL_FINISHED").model_dump(
        mode="json", by_alias=True
    )
    assert body["conferenceId"] is None and body["platform"] == {"applicationId": None, "entityId": None}
    assert body["properties"]["callLog"]["duration"] == 7


def test_hmac_signature_and_basic_header() -> None:
    body = b'{"a":1}'
    expected = hmac.new(b"k", body, hashlib.sha256).hexdigest()
    assert sign(body, "k", None) == f"sha256={expected}"
    assert sign(body, "k", "HMAC_SHA_512").startswith("sha512=")
    headers = auth_headers({"type": "BASIC", "credentials": {"username": "u", "password": "p"}}, body, T0)
    assert headers == {"Authorization": "Basic dTpw"}


def test_backoff_doubles_and_caps() -> None:
    policy = RetryPolicy(base_delay=1, max_delay=300, jitter=0)
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [1, 2, 4, 8]
    assert policy.delay(20) == 300


async def test_multipart_upload_parsing_and_format_sniffing() -> None:
    boundary = "XyZ"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
            "Content-Type: audio/wav\r\n\r\n"
        ).encode()
        + b"RIFF\x00\x00\x00\x00WAVEfmt "
        + f"\r\n--{boundary}--\r\n".encode()
    )
    chunks = [body[:20], body[20:]]

    async def receive() -> Message:
        chunk = chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    content_type = f"multipart/form-data; boundary={boundary}".encode()
    scope = {"type": "http", "method": "POST", "headers": [(b"content-type", content_type)]}
    request = Request(scope, receive)
    name, data, size = await received_file(request)
    assert name == "a.wav" and size == 16 and sniff_format(data.read()) == "WAV"
    await request.close()
    assert sniff_format(b"OggS....") == "OGG"
