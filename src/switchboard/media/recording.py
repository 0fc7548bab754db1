"""Call recorders: 48 kHz mono int16 PCM in, a WAV or Ogg Opus file out, written as the call goes.

WAV is RIFF/WAVE 16-bit PCM (the header's sizes are patched on `close`); Ogg Opus follows RFC 7845 and is
muxed by FFmpeg through PyAV (libopus, `application=voip`, 32 kbit/s, 20 ms frames).
"""

from __future__ import annotations

import os
import wave
from pathlib import Path
from typing import Protocol

import av
import numpy as np
import numpy.typing as npt

from switchboard.errors import MediaError
from switchboard.media.audio import FRAME_SAMPLES, SAMPLE_RATE
from switchboard.media.types import RecordingFormat


class Recorder(Protocol):
    """Writes 48 kHz mono int16 samples to a file; `close` finishes it (idempotent)."""

    @property
    def path(self) -> Path: ...

    def write(self, pcm: npt.NDArray[np.int16]) -> None: ...

    def close(self) -> tuple[int, int]:
        """Finish the file; returns (duration_ms, size_bytes)."""
        ...


def open_recorder(path: Path, fmt: RecordingFormat) -> Recorder:
    """A recorder for `fmt` writing to `path` (parent directories are created)."""
    if fmt is RecordingFormat.WAV:
        return WavRecorder(path)
    return OggOpusRecorder(path)


class WavRecorder:
    """16-bit mono 48 kHz WAV, appended to on every `write` (nothing is held in memory)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._writer: wave.Wave_write | None = wave.open(str(path), "wb")  # noqa: SIM115
        self._writer.setnchannels(1)
        self._writer.setsampwidth(2)
        self._writer.setframerate(SAMPLE_RATE)
        self._samples = 0
        self._result: tuple[int, int] | None = None

    @property
    def path(self) -> Path:
        return self._path

    def write(self, pcm: npt.NDArray[np.int16]) -> None:
        if self._writer is None:
            raise MediaError(f"recording {self._path} is closed")
        samples = np.ascontiguousarray(pcm, dtype="<i2").reshape(-1)
        self._writer.writeframesraw(samples.tobytes())
        self._samples += samples.size

    def close(self) -> tuple[int, int]:
        if self._writer is not None:
            self._writer.close()  # patches the RIFF and data chunk sizes
            self._writer = None
            self._result = (self._samples * 1000 // SAMPLE_RATE, os.path.getsize(self._path))
        assert self._result is not None
        return self._result


class OggOpusRecorder:
    """Opus in Ogg (RFC 7845), encoded frame by frame (~150 µs per 20 ms of audio, on the caller's thread)."""

    def __init__(self, path: Path, bitrate: int = 32000) -> None:
        self._path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            container = av.open(str(path), "w", format="ogg")
        except (OSError, av.FFmpegError) as exc:
            raise MediaError(f"cannot create recording {path}: {exc}") from exc
        stream = container.add_stream("libopus", rate=SAMPLE_RATE)
        stream.layout = "mono"
        stream.format = "s16"
        stream.bit_rate = bitrate
        stream.codec_context.options = {"application": "voip", "frame_duration": "20"}
        try:
            container.start_encoding()  # creates the file and writes the Ogg Opus headers now
        except av.FFmpegError as exc:
            container.close()
            raise MediaError(f"cannot create recording {path}: {exc}") from exc
        self._container: av.container.OutputContainer | None = container
        self._stream = stream
        self._pending = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        self._fill = 0
        self._samples = 0
        self._samples_encoded = 0
        self._result: tuple[int, int] | None = None

    @property
    def path(self) -> Path:
        return self._path

    def write(self, pcm: npt.NDArray[np.int16]) -> None:
        if self._container is None:
            raise MediaError(f"recording {self._path} is closed")
        samples = np.asarray(pcm, dtype=np.int16).reshape(-1)
        self._samples += samples.size
        position = 0
        while position < samples.size:
            take = min(FRAME_SAMPLES - self._fill, samples.size - position)
            self._pending[self._fill : self._fill + take] = samples[position : position + take]
            self._fill += take
            position += take
            if self._fill == FRAME_SAMPLES:
                self._encode(self._pending)
                self._fill = 0

    def close(self) -> tuple[int, int]:
        if self._container is not None:
            if self._fill or not self._samples_encoded:
                # Pad the last frame; an empty recording gets one silent frame, since FFmpeg cannot open
                # an Ogg Opus file that has headers but no audio page.
                self._pending[self._fill :] = 0
                self._encode(self._pending)
                self._fill = 0
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._container.close()
            self._container = None
            self._result = (self._samples * 1000 // SAMPLE_RATE, os.path.getsize(self._path))
        assert self._result is not None
        return self._result

    def _encode(self, chunk: npt.NDArray[np.int16]) -> None:
        assert self._container is not None
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._samples_encoded
        self._samples_encoded += FRAME_SAMPLES
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
