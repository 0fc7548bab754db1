"""The Calls API refuses content and keys that would cost unbounded work: uploads that are not audio, and
DTMF strings that are too long or not keys; the refusals name the field and no path of the server."""

from __future__ import annotations

import wave
from pathlib import Path

import av
import numpy as np

from support.calls_api_harness import running_harness

MAX_DTMF_DIGITS = 64


def wav_bytes(path: Path, seconds: float) -> bytes:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.zeros(round(seconds * 8000), dtype="<i2").tobytes())
    return path.read_bytes()


async def test_an_upload_that_is_not_audio_is_refused_whatever_its_name(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as h:
        c = h.client
        for name, data in (
            ("prompt.wav", b"<html><body>Not found</body></html>\n" * 50),
            ("prompt.mp3", b"%PDF-1.7\n" + bytes(range(256)) * 20),
            ("broken.wav", b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 4),
        ):
            r = await c.post("/calls/1/files", files={"file": (name, data, "audio/wav")})
            assert r.status_code == 400, (name, r.text)
            text = r.json()["requestError"]["serviceException"]["text"]
            assert text.startswith("file: ") and name in text
            assert str(tmp_path) not in text and "/uploads" not in text
        assert (await c.get("/calls/1/files")).json()["paging"]["totalResults"] == 0
        assert not list(tmp_path.rglob("uploads/*")), "a refused upload is not kept"


def mp3_bytes(path: Path, seconds: float) -> bytes:
    with av.open(str(path), "w", format="mp3") as out:
        stream = out.add_stream("libmp3lame", rate=44100)
        stream.layout = "mono"
        silence = np.zeros((1, 1152), dtype=np.int16)
        for n in range(round(seconds * 44100 / 1152)):
            frame = av.AudioFrame.from_ndarray(silence, format="s16", layout="mono")
            frame.sample_rate = 44100
            frame.pts = n * 1152
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path.read_bytes()


async def test_an_upload_is_judged_by_its_content_and_reports_its_duration(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as h:
        c = h.client
        r = await c.post(
            "/calls/1/files", files={"file": ("a.mp3", wav_bytes(tmp_path / "a", 3.0), "audio/mpeg")}
        )
        assert r.status_code == 200, r.text
        assert r.json()["fileFormat"] == "WAV" and r.json()["duration"] == 3
        r = await c.post(
            "/calls/1/files", files={"file": ("b.wav", mp3_bytes(tmp_path / "b", 2.0), "audio/wav")}
        )
        assert r.status_code == 200, r.text
        assert r.json()["fileFormat"] == "MP3" and r.json()["duration"] == 2


async def test_send_dtmf_takes_at_most_64_keys(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as h:
        c = h.client
        call_id = await h.inbound_call()
        assert (await c.post(f"/calls/1/calls/{call_id}/answer", json={})).status_code == 200
        url = f"/calls/1/calls/{call_id}/send-dtmf"
        for dtmf in ("1" * 10_000, "1" * (MAX_DTMF_DIGITS + 1), "12x", ""):
            r = await c.post(url, json={"dtmf": dtmf})
            assert r.status_code == 400, (dtmf[:10], r.text)
            assert "dtmf" in r.json()["requestError"]["serviceException"]["text"]
        assert h.leg(call_id).sent_dtmf == []
        r = await c.post(url, json={"dtmf": "1w2W" + "3" * (MAX_DTMF_DIGITS - 4)})
        assert r.status_code == 200, r.text
        assert len(h.leg(call_id).sent_dtmf) == 1
