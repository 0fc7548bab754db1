from __future__ import annotations

import pytest

from switchboard.channels.sip.info_dtmf import DEFAULT_DURATION_MS, InfoKey, parse_info_dtmf


@pytest.mark.parametrize(
    ("content_type", "body", "key"),
    [
        ("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n", InfoKey("5", 160)),
        ("application/dtmf-relay", b"Signal= #\nDuration= 100\n", InfoKey("#", 100)),
        ("Application/DTMF-Relay; charset=x", b"signal=10\r\n", InfoKey("*", DEFAULT_DURATION_MS)),
        ("application/dtmf-relay", b"Signal=11\r\nDuration=abc\r\n", InfoKey("#", DEFAULT_DURATION_MS)),
        ("application/dtmf-relay", b"Signal=a\r\nDuration=0\r\n", InfoKey("A", DEFAULT_DURATION_MS)),
        ("application/dtmf", b"7", InfoKey("7", DEFAULT_DURATION_MS)),
        ("application/dtmf", b" *\r\n", InfoKey("*", DEFAULT_DURATION_MS)),
    ],
)
def test_dtmf_bodies_name_their_key(content_type: str, body: bytes, key: InfoKey) -> None:
    assert parse_info_dtmf(content_type, body) == key


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/dtmf-relay", b"Signal=16\r\n"),
        ("application/dtmf-relay", b"Duration=160\r\n"),
        ("application/dtmf-relay", b"Signal=55\r\n"),
        ("application/dtmf", b"x"),
        ("application/dtmf", b""),
        ("application/sdp", b"Signal=5\r\n"),
        ("", b"Signal=5\r\n"),
    ],
)
def test_other_bodies_name_no_key(content_type: str, body: bytes) -> None:
    assert parse_info_dtmf(content_type, body) is None
