"""RFC 4733 telephone-events: payload format, sender packet train, receiver de-duplication and loss."""

from __future__ import annotations

import random

import pytest

from switchboard.media.rfc4733 import (
    DIGITS,
    DtmfReceiver,
    DtmfSender,
    TelephoneEvent,
    digit_to_event,
    event_to_digit,
)


def test_digit_event_codes_follow_rfc4733_table() -> None:
    assert [digit_to_event(d) for d in "0123456789*#ABCD"] == list(range(16))
    assert digit_to_event("a") == 12
    assert event_to_digit(11) == "#"
    assert event_to_digit(16) is None
    assert event_to_digit(-1) is None
    assert "".join(event_to_digit(e) or "?" for e in range(16)) == DIGITS


@pytest.mark.parametrize("bad", ["E", "", "12", " ", "x"])
def test_digit_to_event_rejects_and_names_bad_digit(bad: str) -> None:
    with pytest.raises(ValueError, match=repr(bad).replace("\\", "\\\\")):
        digit_to_event(bad)


def test_payload_wire_format() -> None:
    # RFC 4733 §2.3: event 5, E=1, R=0, volume 10, duration 800 -> 05 8a 03 20
    event = TelephoneEvent(event=5, end=True, volume=10, duration=800)
    assert event.serialize() == bytes([0x05, 0x8A, 0x03, 0x20])
    assert TelephoneEvent.parse(bytes([0x05, 0x8A, 0x03, 0x20])) == event
    # The R bit is ignored on receipt; extra bytes are ignored.
    assert TelephoneEvent.parse(bytes([0x0B, 0x4A, 0x00, 0xA0, 0xFF])) == TelephoneEvent(11, False, 10, 160)


def test_parse_rejects_short_payload() -> None:
    with pytest.raises(ValueError, match="3 bytes"):
        TelephoneEvent.parse(b"\x01\x02\x03")


def test_event_rejects_out_of_range_fields() -> None:
    with pytest.raises(ValueError):
        TelephoneEvent(event=1, end=False, volume=64, duration=0)
    with pytest.raises(ValueError):
        TelephoneEvent(event=1, end=False, volume=10, duration=70000)


def test_sender_packet_train() -> None:
    packets = DtmfSender("5", duration_ms=100).packets()
    assert [(marker, duration) for marker, duration, _ in packets] == [
        (True, 160),
        (False, 320),
        (False, 480),
        (False, 640),
        (False, 800),
        (False, 800),
        (False, 800),
    ]
    events = [TelephoneEvent.parse(payload) for _, _, payload in packets]
    assert {e.event for e in events} == {5}
    assert [e.end for e in events] == [False] * 4 + [True] * 3
    assert {e.volume for e in events} == {10}


def test_sender_rounds_partial_last_tick_and_validates() -> None:
    packets = DtmfSender("#", duration_ms=50, ptime_ms=20).packets()
    assert [d for _, d, _ in packets] == [160, 320, 400, 400, 400]
    with pytest.raises(ValueError, match="'X'"):
        DtmfSender("X")


def _feed(receiver: DtmfReceiver, stream: list[tuple[int, bytes]]) -> list[tuple[str, int]]:
    out = []
    for timestamp, payload in stream:
        result = receiver.receive(timestamp, payload)
        if result is not None:
            out.append(result)
    return out


def _train(digits: str, duration_ms: int = 100) -> list[tuple[int, bytes]]:
    stream = []
    timestamp = 1000
    for digit in digits:
        stream += [(timestamp, payload) for _, _, payload in DtmfSender(digit, duration_ms).packets()]
        timestamp += 8 * (duration_ms + 60)
    return stream


def test_round_trip_reports_each_press_once() -> None:
    assert _feed(DtmfReceiver(), _train("1234#")) == [(d, 100) for d in "1234#"]


def test_repeated_same_digit_is_two_presses() -> None:
    assert _feed(DtmfReceiver(), _train("77", duration_ms=80)) == [("7", 80), ("7", 80)]


def test_lost_end_packets_reported_when_next_event_starts() -> None:
    stream = [(ts, p) for ts, p in _train("12") if not TelephoneEvent.parse(p).end or ts != 1000]
    receiver = DtmfReceiver()
    results = _feed(receiver, stream)
    # "1" lost all its end packets: reported (with the longest duration seen, 640 = 80 ms) at the first "2".
    assert results == [("1", 80), ("2", 100)]


def test_lost_end_of_last_event_reported_by_flush() -> None:
    stream = [(ts, p) for ts, p in _train("9") if not TelephoneEvent.parse(p).end]
    receiver = DtmfReceiver()
    assert _feed(receiver, stream) == []
    assert receiver.flush() == ("9", 80)
    assert receiver.flush() is None


def test_only_end_packet_received_still_reported() -> None:
    receiver = DtmfReceiver()
    _, _, end = DtmfSender("D").packets()[-1]
    assert receiver.receive(5000, end) == ("D", 100)
    assert receiver.receive(5000, end) is None


def test_reordered_and_late_packets_do_not_duplicate() -> None:
    stream = _train("3")
    stream[1], stream[2] = stream[2], stream[1]
    receiver = DtmfReceiver()
    assert _feed(receiver, stream) == [("3", 100)]
    # A late copy of the first packet of an already reported event is ignored.
    assert receiver.receive(stream[0][0], stream[0][1]) is None


def test_random_loss_reports_every_press_once() -> None:
    rng = random.Random(4733)
    digits = "0123456789*#ABCD" * 3
    stream = _train(digits)
    for _ in range(20):
        lossy = [packet for packet in stream if rng.random() > 0.3]
        receiver = DtmfReceiver()
        results = _feed(receiver, lossy)
        last = receiver.flush()
        if last is not None:
            results.append(last)
        received_timestamps = sorted({ts for ts, _ in lossy}, key=lambda ts: ts)
        assert len(results) == len(received_timestamps)
        expected = [digits[(ts - 1000) // (8 * 160)] for ts in received_timestamps]
        assert [d for d, _ in results] == expected


def test_non_dtmf_events_are_ignored() -> None:
    receiver = DtmfReceiver()
    flash = TelephoneEvent(event=16, end=True, volume=10, duration=800).serialize()
    assert receiver.receive(100, flash) is None
    assert _feed(receiver, _train("5")) == [("5", 100)]


def test_receiver_clock_rate_48k() -> None:
    receiver = DtmfReceiver(clock_rate=48000)
    packets = DtmfSender("1", duration_ms=100, clock_rate=48000).packets()
    assert [d for _, d, _ in packets][-1] == 4800
    assert _feed(receiver, [(0, p) for _, _, p in packets]) == [("1", 100)]
