"""G.711 tables against the G.711 reference values, and the 8 ⇄ 48 kHz polyphase resampler by frequency."""

from __future__ import annotations

import numpy as np
import pytest

from switchboard.media.audio import tone_pcm
from switchboard.media.codecs import PcmConverter, decoder_for, encoder_for, silence_payload
from switchboard.media.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from switchboard.media.resample import Downsampler, Upsampler, downsample
from switchboard.media.tones import dominant_frequency, tone_power_ratio
from switchboard.media.types import Codec


def test_g711_reference_points() -> None:
    samples = np.array([0, -1, 32767, -32768, 1000], dtype=np.int16)
    assert ulaw_encode(samples) == bytes([0xFF, 0x7E, 0x80, 0x00, 0xCE])
    assert alaw_encode(samples) == bytes([0xD5, 0x55, 0xAA, 0x2A, 0xFA])
    assert ulaw_decode(bytes([0xFF, 0x80, 0x00])).tolist() == [0, 32124, -32124]
    assert alaw_decode(bytes([0xD5, 0xAA, 0x2A])).tolist() == [8, 32256, -32256]


@pytest.mark.parametrize(("encode", "decode"), [(ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)])
def test_g711_round_trip_error_is_logarithmic(encode, decode) -> None:  # type: ignore[no-untyped-def]
    x = np.arange(-32768, 32768, 7, dtype=np.int64).astype(np.int16)
    y = decode(encode(x)).astype(np.int64)
    error = np.abs(y - x.astype(np.int64))
    big = np.abs(x.astype(np.int64)) > 256
    assert (error[big] / np.abs(x.astype(np.int64))[big]).max() < 0.07
    assert error[~big].max() <= 16


def test_silence_payloads_decode_to_near_zero() -> None:
    for codec in (Codec.PCMU, Codec.PCMA):
        pcm = decoder_for(codec).decode(silence_payload(codec))
        assert pcm.size == 160 and np.abs(pcm).max() <= 8


def test_resampling_frame_by_frame_keeps_the_tone_and_has_no_seams() -> None:
    tone = tone_pcm(1000, 1000)
    down = Downsampler()
    narrow = np.concatenate([down.process(tone[i : i + 960]) for i in range(0, tone.size, 960)])
    assert narrow.size == 8000
    assert dominant_frequency(narrow, 8000) == pytest.approx(1000, abs=2)
    up = Upsampler()
    wide = np.concatenate([up.process(narrow[i : i + 160]) for i in range(0, narrow.size, 160)])
    assert wide.size == 48000
    assert tone_power_ratio(wide[2000:], 48000, 1000) > 0.999
    level = np.abs(tone[2000:]).max()
    assert abs(int(np.abs(wide[2000:]).max()) - int(level)) < 0.03 * level


def test_downsampling_rejects_what_8_khz_cannot_carry() -> None:
    assert np.abs(downsample(tone_pcm(6000, 500, level_dbfs=0))[100:-100]).max() < 60
    assert np.abs(downsample(tone_pcm(3000, 500, level_dbfs=0))[100:-100]).max() > 25000


def test_converter_and_encoders_per_codec() -> None:
    assert PcmConverter(8000, 8000).convert(np.ones(3, dtype=np.int16)).tolist() == [1, 1, 1]
    with pytest.raises(ValueError, match="no resampler"):
        PcmConverter(16000, 48000)
    narrow = downsample(tone_pcm(700, 200))
    for codec in (Codec.PCMU, Codec.PCMA):
        encoder = encoder_for(codec)
        payloads = [encoder.encode_frame(narrow[i : i + 160]) for i in range(0, 1600, 160)]
        assert all(len(p) == 160 for p in payloads)
        decoded = np.concatenate([decoder_for(codec).decode(p) for p in payloads])
        assert dominant_frequency(decoded, 8000) == pytest.approx(700, abs=3)
    opus = encoder_for(Codec.OPUS, input_rate=8000)
    assert opus.frame_samples == 160
    frames = [opus.encode_frame(narrow[i : i + 160]) for i in range(0, 1600, 160)]
    decoded = np.concatenate([decoder_for(Codec.OPUS).decode(f) for f in frames if f])
    assert dominant_frequency(decoded[4800:], 48000) == pytest.approx(700, abs=5)
