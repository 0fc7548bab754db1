import functools
from datetime import UTC, datetime, timedelta

from switchboard.core.clock import ManualClock
from switchboard.core.timers import Deadlines, TimerKind


def test_manual_clock_moves_only_when_advanced() -> None:
    start = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
    clock = ManualClock(start)
    assert clock.now() == start
    assert clock.monotonic() == 0.0
    clock.advance(1.5)
    assert clock.monotonic() == 1.5
    assert clock.now() == start + timedelta(seconds=1.5)


def test_advance_runs_due_callbacks_in_time_order_at_their_own_time() -> None:
    clock = ManualClock()
    ran: list[tuple[str, float]] = []
    clock.call_at(3.0, lambda: ran.append(("c", clock.monotonic())))
    clock.call_at(1.0, lambda: ran.append(("a", clock.monotonic())))
    clock.call_at(2.0, lambda: ran.append(("b", clock.monotonic())))
    clock.call_at(10.0, lambda: ran.append(("late", clock.monotonic())))
    clock.advance(5.0)
    assert ran == [("a", 1.0), ("b", 2.0), ("c", 3.0)]
    assert clock.monotonic() == 5.0
    clock.advance(5.0)
    assert ran[-1] == ("late", 10.0)


def test_callbacks_due_at_the_same_time_run_in_the_order_they_were_scheduled() -> None:
    clock = ManualClock()
    ran: list[int] = []
    for n in range(5):
        clock.call_at(1.0, functools.partial(ran.append, n))
    clock.advance(1.0)
    assert ran == [0, 1, 2, 3, 4]


def test_a_cancelled_callback_never_runs() -> None:
    clock = ManualClock()
    ran: list[str] = []
    handle = clock.call_at(1.0, lambda: ran.append("cancelled"))
    clock.call_at(2.0, lambda: ran.append("kept"))
    handle.cancel()
    clock.advance(3.0)
    assert ran == ["kept"]


def test_a_callback_scheduled_by_a_callback_runs_in_the_same_advance_if_due() -> None:
    clock = ManualClock()
    ran: list[float] = []

    def first() -> None:
        ran.append(clock.monotonic())
        clock.call_at(clock.monotonic() + 1.0, lambda: ran.append(clock.monotonic()))
        clock.call_at(clock.monotonic() + 10.0, lambda: ran.append(clock.monotonic()))

    clock.call_at(1.0, first)
    clock.advance(3.0)
    assert ran == [1.0, 2.0]


def test_a_callback_scheduled_in_the_past_runs_at_the_next_advance() -> None:
    clock = ManualClock()
    clock.advance(5.0)
    ran: list[float] = []
    clock.call_at(2.0, lambda: ran.append(clock.monotonic()))
    assert ran == []
    clock.advance(0)
    assert ran == [5.0]


def test_deadlines_keep_one_time_per_kind_and_report_the_earliest() -> None:
    deadlines = Deadlines()
    assert deadlines.next() is None
    deadlines.set(TimerKind.CONNECT, 60.0)
    deadlines.set(TimerKind.CAPTURE, 5.0)
    assert deadlines.next() == 5.0
    deadlines.set(TimerKind.CAPTURE, 70.0)
    assert deadlines.get(TimerKind.CAPTURE) == 70.0
    assert deadlines.next() == 60.0
    deadlines.cancel(TimerKind.CONNECT)
    deadlines.cancel(TimerKind.CONNECT)
    assert deadlines.next() == 70.0
    deadlines.clear()
    assert deadlines.next() is None
    assert deadlines.get(TimerKind.CAPTURE) is None


def test_pop_due_returns_passed_deadlines_earliest_first_and_removes_them() -> None:
    deadlines = Deadlines()
    deadlines.set(TimerKind.TRANSFER, 30.0)
    deadlines.set(TimerKind.CAPTURE, 5.0)
    deadlines.set(TimerKind.MAX_DURATION, 5.0)
    deadlines.set(TimerKind.CONNECT, 60.0)
    assert deadlines.pop_due(4.9) == []
    assert deadlines.pop_due(30.0) == [TimerKind.CAPTURE, TimerKind.MAX_DURATION, TimerKind.TRANSFER]
    assert deadlines.pop_due(30.0) == []
    assert deadlines.next() == 60.0
