"""A DTMF capture as a sans-I/O object: digits and the clock in, a result out.

Semantics of Infobip's `capture/dtmf`: up to `max_length` digits; `terminator` ends the capture and is
not part of the result; `timeout_ms` bounds the whole capture, `digit_timeout_ms` the gap between digits.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class CaptureResult:
    dtmf: str
    timeout: bool


@dataclass(slots=True)
class DtmfCapture:
    operation_id: str
    started: float
    max_length: int
    timeout_ms: int
    terminator: str | None = None
    digit_timeout_ms: int | None = None
    custom_data: dict[str, str] = field(default_factory=dict)
    digits: str = ""
    last_digit_at: float | None = None

    def next_deadline(self) -> float:
        deadline = self.started + self.timeout_ms / 1000
        if self.digit_timeout_ms is not None and self.last_digit_at is not None:
            deadline = min(deadline, self.last_digit_at + self.digit_timeout_ms / 1000)
        return deadline

    def receive(self, digit: str, now: float) -> CaptureResult | None:
        if self.terminator and digit in self.terminator:
            return CaptureResult(self.digits, timeout=False)
        self.digits += digit
        self.last_digit_at = now
        if len(self.digits) >= self.max_length:
            return CaptureResult(self.digits, timeout=False)
        return None

    def timeout(self, now: float) -> CaptureResult | None:
        if now < self.next_deadline():
            return None
        return CaptureResult(self.digits, timeout=True)
