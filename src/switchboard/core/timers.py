"""A call's timers as data: one deadline per kind, and the earliest of them is the one armed.

`Deadlines` is pure (times are arguments); a call's session arms a single wake-up for `next()` and,
when it fires, handles `pop_due(now)`.
"""

from __future__ import annotations

import enum


class TimerKind(enum.Enum):
    CONNECT = "connect"
    """An outbound call not answered within its connect timeout."""
    MAX_DURATION = "max_duration"
    """An answered call reached its `maxDuration`."""
    CAPTURE = "capture"
    """A DTMF capture's overall or inter-digit timeout."""
    MEDIA_CLOSED = "media_closed"
    """The peer closed its media; its signalling did not end the call in time."""
    TRANSFER = "transfer"
    """An application transfer was not accepted in time."""
    STORE_END = "store_end"
    """The call ended but its final state could not be stored (the database failing): try again."""


class Deadlines:
    def __init__(self) -> None:
        self._at: dict[TimerKind, float] = {}

    def set(self, kind: TimerKind, at: float) -> None:
        self._at[kind] = at

    def cancel(self, kind: TimerKind) -> None:
        self._at.pop(kind, None)

    def clear(self) -> None:
        self._at.clear()

    def get(self, kind: TimerKind) -> float | None:
        return self._at.get(kind)

    def next(self) -> float | None:
        return min(self._at.values()) if self._at else None

    def pop_due(self, now: float) -> list[TimerKind]:
        """The kinds whose deadline has passed, earliest first; they are removed."""
        due = sorted((at, kind.value, kind) for kind, at in self._at.items() if at <= now)
        for _, _, kind in due:
            del self._at[kind]
        return [kind for _, _, kind in due]
