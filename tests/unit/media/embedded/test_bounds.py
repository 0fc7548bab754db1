"""What one leg may hold for keys it sends: a bounded DTMF queue behind checked `send_dtmf` strings."""

from __future__ import annotations

import pytest

from switchboard.media.embedded.session import DtmfOut, DtmfQueueFull
from switchboard.media.engine import MAX_DTMF_DIGITS, InvalidDtmf, check_dtmf


def test_a_dtmf_string_is_checked_for_length_and_keys() -> None:
    check_dtmf("0123456789*#ABCDabcd")
    check_dtmf("1w2W#")
    check_dtmf("1" * MAX_DTMF_DIGITS)
    for bad, why in (
        ("", "no keys"),
        ("1" * (MAX_DTMF_DIGITS + 1), f"at most {MAX_DTMF_DIGITS}"),
        ("1" * 10_000, f"at most {MAX_DTMF_DIGITS}"),
        ("12x", "'x'"),
        ("1,2", "','"),
    ):
        with pytest.raises(InvalidDtmf, match=why) as caught:
            check_dtmf(bad)
        assert str(caught.value).startswith("dtmf: ") and caught.value.status_hint == 400


def test_a_legs_dtmf_queue_is_bounded() -> None:
    out = DtmfOut()
    for _ in range(DtmfOut.MAX_QUEUED):
        out.add_events((), 1, None)
    assert out.room == 0
    with pytest.raises(DtmfQueueFull):
        out.add_events((), 1, None)
    with pytest.raises(DtmfQueueFull):
        out.add_tones((b"x",), None)
    assert len(out.queue) == DtmfOut.MAX_QUEUED
