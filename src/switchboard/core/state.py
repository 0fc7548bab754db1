"""The call state machine: legal transitions as data, one function to apply them.

States and their meaning follow Infobip's Calls API. An illegal transition raises `InvalidCallState`,
naming the call, its state and the action, so the API edge can answer 400 with that text.
"""

from __future__ import annotations

from datetime import datetime

from switchboard.core.errors import InvalidCallState
from switchboard.core.models import Call, CallError, CallState, ErrorCode, HangupSource

S = CallState

TRANSITIONS: dict[CallState, frozenset[CallState]] = {
    S.CALLING: frozenset(
        {
            S.RINGING,
            S.PRE_ESTABLISHED,
            S.ESTABLISHED,
            S.FINISHED,
            S.FAILED,
            S.CANCELLED,
            S.NO_ANSWER,
            S.BUSY,
        }
    ),
    S.RINGING: frozenset(
        {S.PRE_ESTABLISHED, S.ESTABLISHED, S.FINISHED, S.FAILED, S.CANCELLED, S.NO_ANSWER, S.BUSY}
    ),
    S.PRE_ESTABLISHED: frozenset({S.ESTABLISHED, S.FINISHED, S.FAILED, S.CANCELLED, S.NO_ANSWER}),
    S.ESTABLISHED: frozenset({S.FINISHED, S.FAILED}),
    S.FINISHED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
    S.NO_ANSWER: frozenset(),
    S.BUSY: frozenset(),
}

ANSWERABLE = frozenset({S.CALLING, S.RINGING, S.PRE_ESTABLISHED})
ACTIVE = frozenset({S.PRE_ESTABLISHED, S.ESTABLISHED})
"""States in which media actions (play, say, capture, record) are allowed."""


def require(call: Call, allowed: frozenset[CallState], action: str) -> None:
    if call.state not in allowed:
        raise InvalidCallState(call.id, call.state.value, action)


def transition(call: Call, new: CallState, now: datetime, action: str) -> None:
    """Move `call` to `new`, stamping the time; raise `InvalidCallState` if not allowed."""
    if new not in TRANSITIONS[call.state]:
        raise InvalidCallState(call.id, call.state.value, action)
    call.state = new
    if new is S.RINGING:
        call.ringing_time = now
    elif new is S.ESTABLISHED:
        call.answer_time = now
    elif new.is_final:
        call.end_time = now


def end(
    call: Call,
    new: CallState,
    now: datetime,
    *,
    source: HangupSource,
    code: ErrorCode,
    description: str,
) -> bool:
    """End `call` unless it has ended already; returns whether it changed."""
    if call.state.is_final:
        return False
    transition(call, new, now, "end")
    call.hangup_source = source
    call.error = CallError(code, description)
    return True


def final_state_for(call: Call, code: ErrorCode) -> CallState:
    """The final state a call reaches when it ends with `code` in its current state: always one the
    table allows from there (FAILED when the code's usual state is not, e.g. BUSY once pre-established)."""
    if call.state is S.ESTABLISHED:
        return S.FAILED if code is ErrorCode.MEDIA_FAILURE else S.FINISHED
    final = {
        ErrorCode.NORMAL_HANGUP: S.FINISHED if call.state is S.PRE_ESTABLISHED else S.CANCELLED,
        ErrorCode.NO_ANSWER: S.NO_ANSWER,
        ErrorCode.BUSY: S.BUSY,
        ErrorCode.REJECTED: S.BUSY,
        ErrorCode.CANCELLED: S.CANCELLED,
    }.get(code, S.FAILED)
    return final if final in TRANSITIONS[call.state] else S.FAILED
