"""The embedded media engine against real aiortc peers on 127.0.0.1 playing WhatsApp's edge.

Each peer offers like Meta (setup:actpass, one audio m-line with only Opus and telephone-event/8000), sends a
steady tone, decodes what it receives and can inject RFC 4733 packets through its SRTP transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aioice.ice
import numpy as np
import pytest
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from av import AudioFrame

from support.media_peers import ToneTrack, meta_like
from switchboard.media.embedded import EmbeddedMediaEngine, SdpError
from switchboard.media.embedded.rtp import build_rtp
from switchboard.media.engine import (
    WHATSAPP_LEG,
    DtmfReceived,
    DtmfSource,
    MediaEvent,
    MediaFailed,
    MediaLeg,
    MediaLocator,
    MediaStarted,
    PlaybackFinished,
    RecordingFinished,
    RecordingFormat,
    Tone,
)
from switchboard.media.rfc4733 import DtmfSender
from switchboard.media.tones import dominant_frequency, read_wav, tone_power_ratio


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


class WhatsAppPeer:
    """An aiortc peer standing in for Meta's media edge."""

    def __init__(self, frequency: float) -> None:
        self.pc = RTCPeerConnection()
        self.pc.addTrack(ToneTrack(frequency))
        self._chunks: list[tuple[float, np.ndarray[Any, Any]]] = []
        self._reader: asyncio.Task[None] | None = None
        self._dtmf_seq = 1000
        self._dtmf_ts = 50000

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self._reader = asyncio.create_task(self._read(track))

    async def _read(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(Exception):
            while True:
                frame = await track.recv()
                assert isinstance(frame, AudioFrame)
                array = frame.to_ndarray()
                channels = len(frame.layout.channels)
                mono = array.reshape(-1, channels).mean(axis=1) if channels > 1 else array.reshape(-1)
                self._chunks.append((time.monotonic(), mono.astype(np.int16)))

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return meta_like(self.pc.localDescription.sdp)

    async def accept(self, answer: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))

    def heard(self, seconds: float) -> np.ndarray[Any, Any]:
        since = time.monotonic() - seconds
        chunks = [chunk for when, chunk in self._chunks if when >= since]
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)

    async def press(self, digits: str) -> None:
        """RFC 4733 events on PT 126, in their own SSRC, through aiortc's SRTP transport."""
        transport = self.pc.getTransceivers()[0].sender.transport
        for digit in digits:
            self._dtmf_ts += 8000
            for marker, _duration, payload in DtmfSender(digit, duration_ms=100).packets():
                self._dtmf_seq += 1
                packet = build_rtp(
                    payload_type=126,
                    sequence=self._dtmf_seq,
                    timestamp=self._dtmf_ts,
                    ssrc=0x1234567,
                    payload=payload,
                    marker=marker,
                )
                await transport._send_rtp(packet)
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.06)

    def kill(self) -> None:
        """Crash: close the peer's sockets without any goodbye (no DTLS close_notify, no RTCP BYE)."""
        connection = self.pc.getTransceivers()[0].sender.transport.transport._connection
        for protocol in connection._protocols:
            protocol.transport.close()

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self.pc.close()


class Events:
    def __init__(self) -> None:
        self.items: list[MediaEvent] = []
        self._changed = asyncio.Event()

    def __call__(self, event: MediaEvent) -> None:
        self.items.append(event)
        self._changed.set()

    async def wait_for(self, kind: type[MediaEvent], count: int = 1, within: float = 10.0) -> list[Any]:
        async with asyncio.timeout(within):
            while True:
                found = [e for e in self.items if isinstance(e, kind)]
                if len(found) >= count:
                    return found
                self._changed.clear()
                await self._changed.wait()


@pytest.fixture
async def engine() -> AsyncIterator[EmbeddedMediaEngine]:
    engine = EmbeddedMediaEngine(addresses=["127.0.0.1"], no_media_timeout=2.0)
    await engine.start()
    try:
        yield engine
    finally:
        await engine.stop()


async def connect(
    engine: EmbeddedMediaEngine, leg_id: str, frequency: float
) -> tuple[WhatsAppPeer, MediaLeg, Events]:
    peer = WhatsAppPeer(frequency)
    events = Events()
    leg = await engine.create_leg(leg_id, events, WHATSAPP_LEG)
    answer = await leg.answer(await peer.offer())
    assert "a=setup:active\r\n" in answer
    await peer.accept(answer)
    await events.wait_for(MediaStarted)
    return peer, leg, events


async def test_answer_sdp_is_whatsapp_shaped(engine: EmbeddedMediaEngine) -> None:
    peer = WhatsAppPeer(440)
    try:
        leg = await engine.create_leg("sdp", Events(), WHATSAPP_LEG)
        answer = await leg.answer(await peer.offer())
        assert answer.endswith("\r\n")
        for expected in (
            "m=audio ",
            " UDP/TLS/RTP/SAVPF 96 126\r\n",
            "a=setup:active",
            "a=rtcp-mux",
            "a=fingerprint:sha-256 ",
            "a=ice-ufrag:",
            "a=ice-pwd:",
            "a=rtpmap:126 telephone-event/8000",
            "a=candidate:",
            "127.0.0.1",
        ):
            assert expected in answer
        await leg.close()
    finally:
        await peer.close()


async def test_bad_offer_is_a_media_error(engine: EmbeddedMediaEngine) -> None:
    leg = await engine.create_leg("bad", Events(), WHATSAPP_LEG)
    offer = "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
    with pytest.raises(SdpError, match="no audio m-line with Opus"):
        await leg.answer(offer)
    await leg.close()


async def test_play_tone_record_dtmf_and_diagnostics(engine: EmbeddedMediaEngine, tmp_path: Path) -> None:
    peer, leg, events = await connect(engine, "call-1", 440)
    try:
        # The engine plays 1 kHz: the peer hears it.
        await leg.play(Tone(1000, 2000), playback_id="p1")
        await asyncio.sleep(1.5)
        heard = peer.heard(1.0)
        assert len(heard) > 24000
        assert abs(dominant_frequency(heard, 48000) - 1000) < 30
        finished = await events.wait_for(PlaybackFinished, within=5)
        assert finished[0].completed and finished[0].playback_id == "p1"
        assert 1900 <= finished[0].duration_ms <= 2100

        # The peer sends 440 Hz: the engine's recording has it.
        path = tmp_path / "rec.wav"
        await leg.start_recording(MediaLocator.for_path(path), fmt=RecordingFormat.WAV, recording_id="r1")
        await asyncio.sleep(1.5)
        await leg.stop_recording()
        recorded = (await events.wait_for(RecordingFinished))[0]
        assert recorded.locator.path == path.resolve() and recorded.size > 0 and recorded.duration_ms > 1000
        pcm, rate = read_wav(path)
        assert abs(dominant_frequency(pcm[rate // 2 :], rate) - 440) < 20
        assert tone_power_ratio(pcm[rate // 2 :], rate, 440) > 0.5

        # RFC 4733 from the peer.
        await peer.press("123#")
        digits = await events.wait_for(DtmfReceived, count=4)
        assert [d.digit for d in digits] == ["1", "2", "3", "#"]
        assert all(d.source is DtmfSource.RFC4733 for d in digits)
        assert all(80 <= d.duration_ms <= 120 for d in digits)

        # DTMF to the peer is sent on the ticker and returns once sent.
        started = time.monotonic()
        await leg.send_dtmf("12", duration_ms=100, gap_ms=60)
        assert 0.2 < time.monotonic() - started < 1.5

        diagnostics = leg.diagnostics()
        assert diagnostics.ice_state == "completed"
        assert diagnostics.dtls_state == "connected"
        assert diagnostics.packets_sent > 100 and diagnostics.packets_received > 100
        assert diagnostics.bytes_sent > 0 and diagnostics.bytes_received > 0
        assert diagnostics.selected_pair and "127.0.0.1" in diagnostics.selected_pair
        assert diagnostics.packets_lost is not None and diagnostics.packets_lost < 5
        assert diagnostics.local_jitter_ms is not None
        assert [c[0] for c in diagnostics.state_changes].count("dtls") >= 2
        assert diagnostics.failure is None
        # aiortc's receiver reports on our stream in RTCP RR.
        assert diagnostics.remote_fraction_lost is not None
        assert diagnostics.remote_jitter_ms is not None
    finally:
        await leg.close()
        await peer.close()


async def test_bridge_two_peers_hear_each_other(engine: EmbeddedMediaEngine) -> None:
    peer_a, leg_a, events_a = await connect(engine, "a", 440)
    peer_b, leg_b, _events_b = await connect(engine, "b", 1200)
    try:
        await engine.bridge(leg_a, leg_b)
        await asyncio.sleep(2.0)
        heard_a, heard_b = peer_a.heard(1.0), peer_b.heard(1.0)
        assert abs(dominant_frequency(heard_a, 48000) - 1200) < 30
        assert abs(dominant_frequency(heard_b, 48000) - 440) < 20
        await peer_a.press("5")
        assert (await events_a.wait_for(DtmfReceived))[0].digit == "5"
        await engine.unbridge(leg_a, leg_b)
        await asyncio.sleep(1.0)
        assert tone_power_ratio(peer_a.heard(0.5), 48000, 1200) < 0.1
    finally:
        await leg_a.close()
        await leg_b.close()
        await peer_a.close()
        await peer_b.close()


async def test_killed_peer_fails_its_leg_only(engine: EmbeddedMediaEngine) -> None:
    peer_a, leg_a, events_a = await connect(engine, "dies", 440)
    peer_b, leg_b, events_b = await connect(engine, "lives", 440)
    try:
        peer_a.kill()
        failed = (await events_a.wait_for(MediaFailed, within=8))[0]
        assert "no RTP from the peer" in failed.reason
        assert leg_a.diagnostics().failure == failed.reason
        assert not [e for e in events_b.items if isinstance(e, MediaFailed)]
        assert leg_b.diagnostics().packets_received > 0
    finally:
        await leg_a.close()
        await leg_b.close()
        await peer_a.close()
        await peer_b.close()


async def test_offer_answer_between_two_legs_carries_rfc4733(engine: EmbeddedMediaEngine) -> None:
    """Business-initiated shape: our offer (actpass), answered by another leg; DTMF goes across."""
    events_out, events_in = Events(), Events()
    caller = await engine.create_leg("out", events_out, WHATSAPP_LEG)
    callee = await engine.create_leg("in", events_in, WHATSAPP_LEG)
    try:
        offer = await caller.offer()
        assert "a=setup:actpass" in offer and "a=rtpmap:126 telephone-event/8000" in offer
        answer = await callee.answer(offer)
        await caller.accept_answer(answer)
        await events_out.wait_for(MediaStarted)
        await events_in.wait_for(MediaStarted)
        await caller.send_dtmf("9*", duration_ms=120)
        digits = await events_in.wait_for(DtmfReceived, count=2)
        assert [(d.digit, d.source) for d in digits] == [
            ("9", DtmfSource.RFC4733),
            ("*", DtmfSource.RFC4733),
        ]
        assert all(100 <= d.duration_ms <= 140 for d in digits)
        # Playback stopped early reports completed=False.
        await caller.play(Tone(700, 5000), playback_id="long")
        await asyncio.sleep(0.2)
        await caller.stop_play()
        stopped = (await events_out.wait_for(PlaybackFinished))[0]
        assert not stopped.completed and 0 < stopped.duration_ms < 1000
    finally:
        await caller.close()
        await callee.close()


def _dtmf_wav(path: Path, digit_freqs: tuple[float, float], ms: int = 200) -> Path:
    silence = np.zeros(48000 * 100 // 1000)
    t = np.arange(48000 * ms // 1000) / 48000
    tone = sum(np.sin(2 * np.pi * f * t) for f in digit_freqs) * 6000
    samples = np.concatenate([silence, tone, silence]).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(48000)
        wav.writeframes(samples.tobytes())
    return path


async def test_inband_dtmf_ogg_recording_and_close_events(
    engine: EmbeddedMediaEngine, tmp_path: Path
) -> None:
    events_out, events_in = Events(), Events()
    caller = await engine.create_leg("out", events_out, WHATSAPP_LEG)
    callee = await engine.create_leg("in", events_in, WHATSAPP_LEG)
    try:
        await caller.accept_answer(await callee.answer(await caller.offer()))
        await events_in.wait_for(MediaStarted)
        await events_out.wait_for(MediaStarted)
        callee.enable_inband_dtmf(True)
        path = tmp_path / "in.ogg"
        await callee.start_recording(MediaLocator.for_path(path), fmt=RecordingFormat.OGG, recording_id="ogg")
        await caller.play(MediaLocator.for_path(_dtmf_wav(tmp_path / "5.wav", (770, 1336))), playback_id="d5")
        digit = (await events_in.wait_for(DtmfReceived, within=5))[0]
        assert (digit.digit, digit.source) == ("5", DtmfSource.INBAND)
        assert 150 <= digit.duration_ms <= 250
        await caller.play(Tone(500, 5000), playback_id="cut")
        await asyncio.sleep(0.3)
    finally:
        await caller.close()
        await callee.close()
    cut = [e for e in events_out.items if isinstance(e, PlaybackFinished) and e.playback_id == "cut"]
    assert len(cut) == 1 and not cut[0].completed
    recording = [e for e in events_in.items if isinstance(e, RecordingFinished)]
    assert len(recording) == 1 and recording[0].locator.path == path.resolve() and recording[0].size > 0
    assert path.read_bytes()[:4] == b"OggS"


async def test_unanswered_ice_fails_the_leg_with_a_reason() -> None:
    engine = EmbeddedMediaEngine(addresses=["127.0.0.1"], ice_timeout=2.0)
    await engine.start()
    try:
        silent = await engine.create_leg("silent", Events(), WHATSAPP_LEG)
        offer = await silent.offer()
        await silent.close()  # nobody answers checks sent to its candidate any more
        events = Events()
        leg = await engine.create_leg("x", events, WHATSAPP_LEG)
        await leg.answer(offer)
        failed = (await events.wait_for(MediaFailed, within=6))[0]
        assert failed.reason.startswith("ICE failed: no candidate pair answered")
        assert "127.0.0.1" in failed.reason
        assert leg.diagnostics().ice_state == "failed"
        await leg.close()
    finally:
        await engine.stop()


async def test_bridge_forwards_rfc4733_and_rewrites_payload_types(
    engine: EmbeddedMediaEngine, tmp_path: Path
) -> None:
    """c1 -> (l1 bridged l2) -> c2, where the l2/c2 call negotiated Opus 109 and telephone-event 101."""
    ev: dict[str, Events] = {name: Events() for name in ("c1", "l1", "l2", "c2")}
    legs = {name: await engine.create_leg(name, ev[name], WHATSAPP_LEG) for name in ev}
    try:
        await legs["c1"].accept_answer(await legs["l1"].answer(await legs["c1"].offer()))
        offer = await legs["c2"].offer()
        offer = offer.replace(" 111 126", " 109 101").replace(":111 ", ":109 ").replace(":126 ", ":101 ")
        answer = await legs["l2"].answer(offer)
        assert " UDP/TLS/RTP/SAVPF 109 101\r\n" in answer
        await legs["c2"].accept_answer(answer)
        for name in ev:
            await ev[name].wait_for(MediaStarted)
        await engine.bridge(legs["l1"], legs["l2"])
        path = tmp_path / "c2.wav"
        await legs["c2"].start_recording(
            MediaLocator.for_path(path), fmt=RecordingFormat.WAV, recording_id="c2"
        )
        await legs["c1"].play(Tone(1000, 1500), playback_id="t")
        await ev["c1"].wait_for(PlaybackFinished, within=5)
        await legs["c2"].stop_recording()
        pcm, rate = read_wav(path)
        assert abs(dominant_frequency(pcm, rate) - 1000) < 30
        await legs["c1"].send_dtmf("47")
        for name in ("l1", "c2"):
            digits = await ev[name].wait_for(DtmfReceived, count=2)
            assert [d.digit for d in digits] == ["4", "7"], name
        assert not [e for e in ev["l2"].items if isinstance(e, DtmfReceived)]
        d2 = legs["c2"].diagnostics()
        assert d2.packets_lost == 0 and d2.packets_received > 50
    finally:
        for leg in legs.values():
            await leg.close()


async def test_public_address_is_advertised() -> None:
    engine = EmbeddedMediaEngine(addresses=["127.0.0.1"], public_address="203.0.113.9")
    await engine.start()
    try:
        leg = await engine.create_leg("nat", Events(), WHATSAPP_LEG)
        offer = await leg.offer()
        assert "c=IN IP4 203.0.113.9\r\n" in offer
        candidates = [line for line in offer.split("\r\n") if line.startswith("a=candidate:")]
        assert any(" 203.0.113.9 " in line for line in candidates)
        assert any(" 127.0.0.1 " in line for line in candidates)
        ports = {line.split()[5] for line in candidates}
        assert len(ports) == 1
        await leg.close()
    finally:
        await engine.stop()
