"""What one leg may hold for media it sends or records: a bounded DTMF queue behind checked `send_dtmf`
strings, and recording buffers that do not grow while nothing mixes them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from switchboard.media.embedded.session import DtmfOut, DtmfQueueFull, RecordingTap
from switchboard.media.engine import MAX_DTMF_DIGITS, Codec, InvalidDtmf, check_dtmf
from switchboard.media.recording import WavRecorder


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


def test_a_recording_holds_at_most_200_ms_while_nothing_takes_its_audio(tmp_path: Path) -> None:
    tap = RecordingTap(WavRecorder(tmp_path / "r.wav"), "r", Codec.PCMU)
    block = np.zeros(160, dtype=np.int16)
    silence = bytes([0xFF]) * 160
    for _ in range(500):  # 10 s received and sent with no tick to mix it
        tap.received(block, 8000)
        tap.sent(silence)
    assert tap.rx_samples <= 10 * 960 + 960 and sum(b.size for b in tap.rx) == tap.rx_samples
    assert tap.tx_samples <= 10 * 960 + 960 and sum(b.size for b in tap.tx) == tap.tx_samples
    tap.recorder.close()
