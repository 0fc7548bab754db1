"""Media operations and their timing: play and say, stop on a key, DTMF capture, sending keys,
recording, and what a hang-up does to operations still running."""

from pathlib import Path

import pytest

from support.control_rig import Rig
from support.fakes import settle
from switchboard.core.content import FileContent, RecordingContent, UrlContent
from switchboard.core.errors import InvalidCallState, NotFound
from switchboard.core.events import (
    CallFinished,
    DtmfCaptured,
    DtmfReceived,
    PlayFinished,
    RecordingReady,
    SayFinished,
)
from switchboard.core.models import CallState
from switchboard.errors import MediaError
from switchboard.media.engine import AudioSource, MediaLocator, RecordingFormat, Tone

PROMPT = FileContent("prompt")
PROMPT_AT = MediaLocator("file:///audio/prompt.wav")


@pytest.fixture
async def call_id(rig: Rig) -> str:
    rig.audio.files["prompt"] = PROMPT_AT
    return await rig.established_inbound()


# -- play and say -------------------------------------------------------------------------------------


async def test_a_play_runs_to_its_end_and_reports_it(rig: Rig, call_id: str) -> None:
    op = await rig.control.play(call_id, PROMPT, loop_count=2, custom_data={"step": "greeting"})
    assert rig.leg(call_id).played == [(PROMPT_AT, op, 2)]
    rig.leg(call_id).finish_playback(1800)
    done = await rig.events.wait_for(PlayFinished, call_id)
    assert (done.operation_id, done.duration_ms, done.completed) == (op, 1800, True)
    assert done.custom_data == {"step": "greeting"}
    assert done.captured_dtmf is None


async def test_stop_play_reports_the_play_as_not_completed(rig: Rig, call_id: str) -> None:
    op = await rig.control.play(call_id, PROMPT)
    await rig.control.stop_play(call_id)
    done = await rig.events.wait_for(PlayFinished, call_id)
    assert (done.operation_id, done.completed) == (op, False)


async def test_a_new_play_replaces_the_old_one_reported_not_completed(rig: Rig, call_id: str) -> None:
    first = await rig.control.play(call_id, PROMPT)
    second = await rig.control.play(call_id, Tone(440, 1000))
    replaced = await rig.events.wait_for(PlayFinished, call_id)
    assert (replaced.operation_id, replaced.completed) == (first, False)
    rig.leg(call_id).finish_playback()
    done = await rig.events.wait_for(PlayFinished, call_id, n=2)
    assert (done.operation_id, done.completed) == (second, True)
    await settle()
    assert len(rig.events.find(PlayFinished, call_id)) == 2, (
        "the engine's late report of the first is dropped"
    )


async def test_say_speaks_the_text_and_reports_say_finished(rig: Rig, call_id: str) -> None:
    op = await rig.control.say(call_id, "Hello", language="de")
    assert rig.speech.said == ["Hello"]
    assert rig.speech.languages == ["de"]
    rig.leg(call_id).finish_playback()
    done = await rig.events.wait_for(SayFinished, call_id)
    assert (done.operation_id, done.completed) == (op, True)
    assert rig.events.find(PlayFinished, call_id) == []


async def test_content_is_resolved_by_its_source(rig: Rig, call_id: str) -> None:
    rig.audio.recordings["rec-1"] = MediaLocator("file:///recordings/rec-1.wav")
    await rig.control.play(call_id, RecordingContent("rec-1"))
    await rig.control.play(call_id, UrlContent("https://example.com/a.wav", cache_duration_s=60))
    await rig.control.play(call_id, Tone(440, 200))
    sources = [source for source, _, _ in rig.leg(call_id).played]
    assert sources == [
        MediaLocator("file:///recordings/rec-1.wav"),
        MediaLocator("file:///cache/1.wav"),
        Tone(440, 200),
    ]
    assert rig.urls.fetched == [("https://example.com/a.wav", 60)]


async def test_missing_content_is_not_found_and_nothing_plays(rig: Rig, call_id: str) -> None:
    with pytest.raises(NotFound, match="file 'nope' not found"):
        await rig.control.play(call_id, FileContent("nope"))
    assert rig.leg(call_id).played == []


async def test_a_pre_established_call_may_play_but_a_calling_one_may_not(rig: Rig) -> None:
    rig.audio.files["prompt"] = PROMPT_AT
    call_id = await rig.inbound()
    with pytest.raises(InvalidCallState, match=f"cannot play call '{call_id}' in state CALLING"):
        await rig.control.play(call_id, PROMPT)
    with pytest.raises(InvalidCallState, match="cannot say call"):
        await rig.control.say(call_id, "hi")
    await rig.control.pre_answer(call_id)
    await rig.control.play(call_id, PROMPT)


async def test_a_play_that_listens_for_a_key_stops_on_it(rig: Rig, call_id: str) -> None:
    op = await rig.control.play(call_id, PROMPT, stop_on_terminator="#")
    rig.leg(call_id).press("12#3")
    done = await rig.events.wait_for(PlayFinished, call_id)
    assert (done.operation_id, done.completed) == (op, False)
    assert done.captured_dtmf == "12#"
    received = [e.digit for e in rig.events.find(DtmfReceived, call_id)]
    assert received == ["1", "2", "#", "3"]


async def test_a_play_that_does_not_listen_for_keys_is_not_stopped_by_them(rig: Rig, call_id: str) -> None:
    await rig.control.play(call_id, PROMPT)
    rig.leg(call_id).press("#")
    await rig.events.wait_for(DtmfReceived, call_id)
    await settle()
    assert rig.leg(call_id).playing is not None
    assert rig.events.find(PlayFinished, call_id) == []


# -- DTMF -----------------------------------------------------------------------------------------------


async def test_a_capture_ends_at_its_max_length(rig: Rig, call_id: str) -> None:
    op = await rig.control.capture_dtmf(call_id, max_length=3, timeout_ms=10_000, custom_data={"a": "b"})
    assert rig.leg(call_id).inband_dtmf is True
    rig.leg(call_id).press("1234")
    captured = await rig.events.wait_for(DtmfCaptured, call_id)
    assert (captured.dtmf, captured.timeout) == ("123", False)
    assert captured.custom_data == {"a": "b"}
    assert op
    assert rig.leg(call_id).inband_dtmf is False
    await settle()
    assert len(rig.events.find(DtmfReceived, call_id)) == 4
    assert len(rig.events.find(DtmfCaptured, call_id)) == 1


async def test_keys_from_the_signalling_feed_a_capture_as_media_keys_do(rig: Rig, call_id: str) -> None:
    await rig.control.capture_dtmf(call_id, max_length=2, timeout_ms=10_000)
    peer_call_id = (await rig.control.get_call(call_id)).peer_call_id
    assert peer_call_id is not None
    assert rig.control.remote_dtmf(peer_call_id, "4", 160)
    assert rig.control.remote_dtmf(peer_call_id, "#", 160)
    captured = await rig.events.wait_for(DtmfCaptured, call_id)
    assert (captured.dtmf, captured.timeout) == ("4#", False)
    assert not rig.control.remote_dtmf("no-such-call", "1", 160)


async def test_a_capture_whose_deadline_cannot_be_computed_leaves_no_capture_behind(
    rig: Rig, call_id: str
) -> None:
    with pytest.raises(OverflowError):
        await rig.control.capture_dtmf(call_id, max_length=3, timeout_ms=10**400)
    assert await rig.control.capture_dtmf(call_id, max_length=3, timeout_ms=10_000)


async def test_the_terminator_ends_a_capture_and_is_not_in_the_result(rig: Rig, call_id: str) -> None:
    await rig.control.capture_dtmf(call_id, max_length=10, timeout_ms=10_000, terminator="#")
    rig.leg(call_id).press("42#")
    captured = await rig.events.wait_for(DtmfCaptured, call_id)
    assert (captured.dtmf, captured.timeout) == ("42", False)


async def test_a_capture_times_out_overall_with_the_keys_so_far(rig: Rig, call_id: str) -> None:
    await rig.control.capture_dtmf(call_id, max_length=5, timeout_ms=5_000)
    rig.leg(call_id).press("7")
    await rig.events.wait_for(DtmfReceived, call_id)
    rig.clock.advance(4.9)
    await settle()
    assert rig.events.find(DtmfCaptured, call_id) == []

    rig.clock.advance(0.1)

    captured = await rig.events.wait_for(DtmfCaptured, call_id)
    assert (captured.dtmf, captured.timeout) == ("7", True)
    assert captured.timestamp == rig.clock.now()


async def test_a_capture_times_out_between_keys(rig: Rig, call_id: str) -> None:
    await rig.control.capture_dtmf(call_id, max_length=5, timeout_ms=30_000, digit_timeout_ms=2_000)
    rig.clock.advance(10)
    await settle()
    assert rig.events.find(DtmfCaptured, call_id) == [], "the gap counts only after a first key"
    rig.leg(call_id).press("1")
    await rig.events.wait_for(DtmfReceived, call_id)
    rig.clock.advance(1.5)
    rig.leg(call_id).press("2")
    await rig.events.wait_for(DtmfReceived, call_id, n=2)
    rig.clock.advance(1.9)
    await settle()
    assert rig.events.find(DtmfCaptured, call_id) == []

    rig.clock.advance(0.1)

    captured = await rig.events.wait_for(DtmfCaptured, call_id)
    assert (captured.dtmf, captured.timeout) == ("12", True)


async def test_a_second_capture_is_refused_while_one_runs(rig: Rig, call_id: str) -> None:
    await rig.control.capture_dtmf(call_id, max_length=2, timeout_ms=5_000)
    with pytest.raises(InvalidCallState, match="start a second DTMF capture"):
        await rig.control.capture_dtmf(call_id, max_length=2, timeout_ms=5_000)
    rig.leg(call_id).press("12")
    await rig.events.wait_for(DtmfCaptured, call_id)
    await rig.control.capture_dtmf(call_id, max_length=2, timeout_ms=5_000)


async def test_keys_are_sent_to_the_peer(rig: Rig, call_id: str) -> None:
    call = await rig.control.send_dtmf(call_id, "12#")
    assert call.state is CallState.ESTABLISHED
    assert rig.leg(call_id).sent_dtmf == ["12#"]


async def test_keys_cannot_be_sent_before_the_call_is_answered(rig: Rig) -> None:
    call_id = await rig.inbound()
    with pytest.raises(InvalidCallState, match="cannot send DTMF on call"):
        await rig.control.send_dtmf(call_id, "1")
    assert rig.leg(call_id).sent_dtmf == []


# -- recording ------------------------------------------------------------------------------------------


async def test_a_recording_that_is_stopped_is_reported_ready(rig: Rig, call_id: str) -> None:
    recording_id = await rig.control.start_recording(call_id, fmt=RecordingFormat.OGG, custom_data={"r": "1"})
    target, rid = rig.leg(call_id).recording or (None, None)
    assert rid == recording_id
    assert target == MediaLocator(f"file:///recordings/{call_id}/{recording_id}.ogg")

    await rig.control.stop_recording(call_id)

    ready = await rig.events.wait_for(RecordingReady, call_id)
    assert ready.recording_id == recording_id
    assert ready.path == Path(f"/recordings/{call_id}/{recording_id}.ogg")
    assert ready.duration_ms == 2000
    assert ready.custom_data == {"r": "1"}


async def test_a_second_recording_is_refused_and_stopping_none_is_refused(rig: Rig, call_id: str) -> None:
    with pytest.raises(InvalidCallState, match="stop recording on"):
        await rig.control.stop_recording(call_id)
    await rig.control.start_recording(call_id)
    with pytest.raises(InvalidCallState, match="start a second recording"):
        await rig.control.start_recording(call_id)


async def test_a_call_that_is_not_answered_cannot_be_recorded(rig: Rig) -> None:
    call_id = await rig.inbound()
    with pytest.raises(InvalidCallState, match="cannot record call"):
        await rig.control.start_recording(call_id)


async def test_a_recording_stopped_by_the_hangup_is_still_reported(rig: Rig, call_id: str) -> None:
    recording_id = await rig.control.start_recording(call_id)
    await rig.control.hangup(call_id)
    ready = await rig.events.wait_for(RecordingReady, call_id)
    assert ready.recording_id == recording_id
    assert rig.events.names(call_id)[-2:] == ["CallFinished", "RecordingReady"]


async def test_a_recording_the_engine_completes_after_the_hangup_is_still_reported(rig: Rig) -> None:
    rig.engine.report_recordings_at_once = False
    call_id = await rig.established_inbound()
    recording_id = await rig.control.start_recording(call_id)
    await rig.control.hangup(call_id)
    await rig.events.wait_for(CallFinished, call_id)
    await settle()

    rig.leg(call_id).finish_recording()

    ready = await rig.events.wait_for(RecordingReady, call_id)
    assert ready.recording_id == recording_id


# -- a hang-up while operations run ------------------------------------------------------------------


async def test_operations_running_at_the_hangup_are_reported_not_completed_before_the_end(
    rig: Rig, call_id: str
) -> None:
    play = await rig.control.play(call_id, PROMPT, custom_data={"p": "1"})
    capture = await rig.control.capture_dtmf(call_id, max_length=4, timeout_ms=10_000)
    rig.leg(call_id).press("9")
    await rig.events.wait_for(DtmfReceived, call_id)
    assert capture

    await rig.control.hangup(call_id)

    stopped = await rig.events.wait_for(PlayFinished, call_id)
    assert (stopped.operation_id, stopped.completed, stopped.custom_data) == (play, False, {"p": "1"})
    captured = await rig.events.wait_for(DtmfCaptured, call_id)
    assert (captured.dtmf, captured.timeout) == ("9", True)
    assert rig.events.names(call_id)[-3:] == ["PlayFinished", "DtmfCaptured", "CallFinished"]


async def test_media_events_after_the_end_are_ignored(rig: Rig, call_id: str) -> None:
    await rig.control.play(call_id, PROMPT)
    leg = rig.leg(call_id)
    await rig.control.hangup(call_id)
    names = rig.events.names(call_id)
    leg.press("1")
    leg.fail()
    await settle()
    assert rig.events.names(call_id) == names


async def test_a_play_the_engine_refuses_fails_and_is_never_reported_finished(rig: Rig, call_id: str) -> None:
    async def refuse(source: AudioSource, *, loop_count: int = 1, playback_id: str) -> None:
        raise MediaError("unsupported audio format")

    rig.leg(call_id).play = refuse  # type: ignore[method-assign]
    with pytest.raises(MediaError, match="unsupported audio format"):
        await rig.control.play(call_id, PROMPT)
    await rig.control.stop_play(call_id)
    await rig.control.hangup(call_id)
    await rig.events.wait_for(CallFinished, call_id)
    assert rig.events.find(PlayFinished, call_id) == []
