from datetime import UTC, datetime, timedelta

import pytest

from switchboard.core import state as st
from switchboard.core.errors import InvalidCallState
from switchboard.core.models import (
    Call,
    CallState,
    Direction,
    Endpoint,
    EndpointType,
    ErrorCode,
    HangupSource,
)

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def new_call() -> Call:
    return Call(
        id="c1",
        endpoint=Endpoint(EndpointType.WHATSAPP, phone_number="1555"),
        direction=Direction.INBOUND,
        from_="1555",
        to="1666",
        start_time=T0,
    )


def test_answered_call_has_duration_in_whole_seconds() -> None:
    call = new_call()
    st.transition(call, CallState.RINGING, T0 + timedelta(seconds=1), "ring")
    st.transition(call, CallState.ESTABLISHED, T0 + timedelta(seconds=3), "answer")
    st.end(
        call,
        CallState.FINISHED,
        T0 + timedelta(seconds=10, milliseconds=700),
        source=HangupSource.API,
        code=ErrorCode.NORMAL_HANGUP,
        description="bye",
    )
    assert call.duration == 7
    assert call.ring_duration == 3
    assert call.error is not None and call.error.code is ErrorCode.NORMAL_HANGUP


def test_illegal_transition_names_call_state_and_action() -> None:
    call = new_call()
    st.end(
        call,
        CallState.CANCELLED,
        T0,
        source=HangupSource.ENDPOINT,
        code=ErrorCode.CANCELLED,
        description="gone",
    )
    with pytest.raises(InvalidCallState, match="cannot answer call 'c1' in state CANCELLED"):
        st.transition(call, CallState.ESTABLISHED, T0, "answer")
    assert not st.end(
        call,
        CallState.FINISHED,
        T0,
        source=HangupSource.API,
        code=ErrorCode.NORMAL_HANGUP,
        description="again",
    )


def test_every_state_has_a_row_and_final_states_have_no_way_out() -> None:
    assert set(st.TRANSITIONS) == set(CallState)
    for state in CallState:
        if state.is_final:
            assert not st.TRANSITIONS[state]


@pytest.mark.parametrize(
    ("state", "code", "final"),
    [
        (CallState.ESTABLISHED, ErrorCode.NORMAL_HANGUP, CallState.FINISHED),
        (CallState.ESTABLISHED, ErrorCode.MEDIA_FAILURE, CallState.FAILED),
        (CallState.CALLING, ErrorCode.NORMAL_HANGUP, CallState.CANCELLED),
        (CallState.RINGING, ErrorCode.NO_ANSWER, CallState.NO_ANSWER),
        (CallState.RINGING, ErrorCode.REJECTED, CallState.BUSY),
        (CallState.CALLING, ErrorCode.SERVICE_UNAVAILABLE, CallState.FAILED),
    ],
)
def test_final_state_for(state: CallState, code: ErrorCode, final: CallState) -> None:
    call = new_call()
    call.state = state
    assert st.final_state_for(call, code) is final


@pytest.mark.parametrize("code", list(ErrorCode))
@pytest.mark.parametrize("state", [s for s in CallState if not s.is_final])
def test_final_state_for_is_reachable_from_the_current_state(state: CallState, code: ErrorCode) -> None:
    call = new_call()
    call.state = state
    assert st.final_state_for(call, code) in st.TRANSITIONS[state]


def test_a_pre_established_call_ended_as_busy_fails() -> None:
    call = new_call()
    call.state = CallState.PRE_ESTABLISHED
    assert st.final_state_for(call, ErrorCode.BUSY) is CallState.FAILED
    assert st.final_state_for(call, ErrorCode.REJECTED) is CallState.FAILED
