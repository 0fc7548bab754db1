"""RFC 4733 telephone-events (DTMF over RTP), sans-I/O.

The payload format is RFC 4733 §2.3 (event, E bit, R bit, volume, duration); the event codes for DTMF are
§3.2 (Table 7: 0-9, * = 10, # = 11, A-D = 12-15). Sending follows §2.5.1 (first packet with the RTP
marker, one packet per packetization interval with a growing duration, the final packet repeated three
times, §2.5.1.4) and receiving follows §2.5.2 (one event per RTP timestamp; the E bit may be lost, so
a new timestamp ends the previous event, §2.5.2.2).
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass

DIGITS = "0123456789*#ABCD"
"""DTMF digits in RFC 4733 §3.2 event-code order: the index is the event code."""

DEFAULT_CLOCK_RATE = 8000
"""telephone-event/8000, the clock rate WhatsApp and most SIP peers negotiate."""

END_REPEAT = 3
"""RFC 4733 §2.5.1.4: the final packet of an event is sent three times."""

_PAYLOAD = struct.Struct("!BBH")


def event_to_digit(event: int) -> str | None:
    """The digit of a DTMF event code (RFC 4733 §3.2), or None for a non-DTMF event (e.g. 32+ line events)."""
    if 0 <= event < len(DIGITS):
        return DIGITS[event]
    return None


def digit_to_event(digit: str) -> int:
    """The RFC 4733 §3.2 event code of a DTMF digit (case-insensitive for A-D)."""
    index = DIGITS.find(digit.upper()) if len(digit) == 1 else -1
    if index < 0:
        raise ValueError(f"not a DTMF digit: {digit!r} (expected one of {DIGITS})")
    return index


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """One telephone-event payload (RFC 4733 §2.3)."""

    event: int
    end: bool
    volume: int
    """Power level in -dBm0, 0-63 (§2.3.4); DTMF senders typically use 10."""
    duration: int
    """Duration so far in timestamp units (§2.3.5), 0-65535."""

    def __post_init__(self) -> None:
        if not 0 <= self.event <= 255:
            raise ValueError(f"event {self.event} out of range 0-255")
        if not 0 <= self.volume <= 63:
            raise ValueError(f"volume {self.volume} out of range 0-63")
        if not 0 <= self.duration <= 0xFFFF:
            raise ValueError(f"duration {self.duration} out of range 0-65535")

    @classmethod
    def parse(cls, payload: bytes) -> TelephoneEvent:
        """Parse the first 4 bytes of an RTP payload (extra bytes, e.g. RFC 2198 leftovers, are ignored)."""
        if len(payload) < 4:
            raise ValueError(f"telephone-event payload too short: {len(payload)} bytes, need 4")
        event, flags, duration = _PAYLOAD.unpack_from(payload)
        return cls(event=event, end=bool(flags & 0x80), volume=flags & 0x3F, duration=duration)

    def serialize(self) -> bytes:
        """The 4-byte payload; the R bit is always 0 (§2.3.3)."""
        return _PAYLOAD.pack(self.event, (0x80 if self.end else 0) | self.volume, self.duration)


class DtmfReceiver:
    """Turns received telephone-event payloads into one (digit, duration_ms) per key press.

    Events are identified by their RTP timestamp (§2.5.2): retransmitted end packets of an event already
    reported are ignored, and an event whose end packets were all lost is reported as soon as a packet with a
    new timestamp arrives (§2.5.2.2), with the longest duration seen. Non-DTMF events (codes 16+) are ignored.
    Sans-I/O: the caller passes the RTP timestamp and payload of each packet of the telephone-event type.
    """

    def __init__(self, clock_rate: int = DEFAULT_CLOCK_RATE) -> None:
        self._clock_rate = clock_rate
        self._timestamp: int | None = None
        self._event = 0
        self._duration = 0
        self._recent: deque[int] = deque(maxlen=8)
        """Timestamps of events already reported (late or repeated packets of them are dropped)."""

    def receive(self, timestamp: int, payload: bytes) -> tuple[str, int] | None:
        """Feed one packet; returns (digit, duration_ms) when a key press is complete, else None.

        A malformed payload (< 4 bytes) raises ValueError.
        """
        packet = TelephoneEvent.parse(payload)
        if timestamp in self._recent:
            return None
        result: tuple[str, int] | None = None
        if self._timestamp is not None and timestamp != self._timestamp:
            # §2.5.2.2: a new event started before we saw the end of the previous one.
            result = self._finish()
        if event_to_digit(packet.event) is None:
            return result
        if self._timestamp is None:
            self._timestamp = timestamp
            self._event = packet.event
            self._duration = packet.duration
        else:
            self._duration = max(self._duration, packet.duration)
        if packet.end and result is None:
            result = self._finish()
        return result

    def flush(self) -> tuple[str, int] | None:
        """Report an event still in progress (its end was lost and no new event followed), e.g. at hangup."""
        return self._finish() if self._timestamp is not None else None

    def _finish(self) -> tuple[str, int] | None:
        assert self._timestamp is not None
        self._recent.append(self._timestamp)
        self._timestamp = None
        digit = event_to_digit(self._event)
        if digit is None:
            return None
        return digit, self._duration * 1000 // self._clock_rate


class DtmfSender:
    """The packets of one key press (RFC 4733 §2.5.1), for the caller to send one per `ptime_ms`.

    All packets of the event carry the same RTP timestamp (the time the key went down); the first also carries
    the RTP marker. The duration grows by one packetization interval per packet, and the last (E bit set) is
    sent three times (§2.5.1.4). Durations beyond 65535 units would need §2.5.1.3 segments; they are clamped.
    """

    def __init__(
        self,
        digit: str,
        duration_ms: int = 100,
        volume: int = 10,
        ptime_ms: int = 20,
        clock_rate: int = DEFAULT_CLOCK_RATE,
    ) -> None:
        if duration_ms <= 0 or ptime_ms <= 0:
            raise ValueError("duration_ms and ptime_ms must be positive")
        self.digit = digit
        self.event = digit_to_event(digit)
        self.duration_ms = duration_ms
        self.volume = volume
        self.ptime_ms = ptime_ms
        self.clock_rate = clock_rate

    def packets(self) -> list[tuple[bool, int, bytes]]:
        """(marker, duration so far in timestamp units, payload) for each tick, end packet repeated."""
        step = self.clock_rate * self.ptime_ms // 1000
        total = min(self.clock_rate * self.duration_ms // 1000, 0xFFFF)
        ticks = max(1, -(-total // step))
        result: list[tuple[bool, int, bytes]] = []
        for tick in range(1, ticks + 1):
            duration = min(tick * step, total)
            end = tick == ticks
            payload = TelephoneEvent(self.event, end, self.volume, duration).serialize()
            for _ in range(END_REPEAT if end else 1):
                result.append((tick == 1 and not result, duration, payload))
        return result
