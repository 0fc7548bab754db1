from __future__ import annotations

import pytest

from switchboard.channels.sip.transport import ConnectionClock, StreamLimits

LIMITS = StreamLimits(idle_s=60, message_s=10)


def test_an_idle_connection_is_due_idle_s_after_its_last_traffic() -> None:
    clock = ConnectionClock(LIMITS, now=100)
    assert clock.deadline() == (160, "idle")
    clock.traffic(130)
    assert clock.deadline() == (190, "idle")


def test_an_incomplete_message_is_due_message_s_after_its_first_byte_however_it_trickles() -> None:
    clock = ConnectionClock(LIMITS, now=0)
    clock.received(1, completed=False, partial=True)
    for now in (2, 5, 9):
        clock.received(now, completed=False, partial=True)
        assert clock.deadline() == (11, "message incomplete")
    clock.received(10, completed=True, partial=False)
    assert clock.deadline() == (70, "idle")


def test_a_new_partial_message_after_a_complete_one_gets_its_own_time() -> None:
    clock = ConnectionClock(LIMITS, now=0)
    clock.received(1, completed=False, partial=True)
    clock.received(8, completed=True, partial=True)
    assert clock.deadline() == (18, "message incomplete")


@pytest.mark.parametrize(
    "kwargs", [{"idle_s": 0}, {"message_s": -1}, {"max_inbound": 0}, {"max_buffered": 100}]
)
def test_limits_are_checked(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="stream limits"):
        StreamLimits(**kwargs)  # type: ignore[arg-type]
