"""The engine under prompts that cost: long files decoded while other legs send their 20 ms packets, keys
with pauses, and a bridged leg that sends keys faster than they can go out."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from support.media_peers import Events, RtpPeer
from switchboard.media.embedded import EmbeddedMediaEngine
from switchboard.media.embedded.leg import EmbeddedLeg
from switchboard.media.embedded.session import DtmfOut
from switchboard.media.engine import Codec, LegSpec, MediaLeg, MediaLocator, TransportProfile

SIP = LegSpec(profile=TransportProfile.RTP, codecs=(Codec.PCMU, Codec.TELEPHONE_EVENT))
OPUS = LegSpec(profile=TransportProfile.RTP, codecs=(Codec.OPUS, Codec.TELEPHONE_EVENT))


@pytest.fixture
async def engine() -> AsyncIterator[EmbeddedMediaEngine]:
    engine = EmbeddedMediaEngine(
        addresses=["127.0.0.1"], no_media_timeout=30.0, rtp_ports=(32000, 32999), max_prompt_seconds=20
    )
    await engine.start()
    try:
        yield engine
    finally:
        await engine.stop()


async def rtp_call(engine: EmbeddedMediaEngine, peer: RtpPeer) -> MediaLeg:
    await peer.start()
    leg = await engine.create_leg(f"sip-{peer.port}", Events(), SIP)
    peer.accept(await leg.answer(peer.offer()))
    peer.begin()
    return leg


def write_wav(path: Path, seconds: float, frequency: float) -> Path:
    t = np.arange(round(seconds * 8000)) / 8000
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(8000)
        writer.writeframes(np.round(8000 * np.sin(2 * np.pi * frequency * t)).astype("<i2").tobytes())
    return path


async def other_calls_traffic(datagrams_per_tick: int = 200) -> None:
    """What the rest of a busy server does on the loop: many short system calls (datagrams out and in)
    every 20 ms, each of which lets go of the GIL and must take it back."""
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as source,
    ):
        sink.bind(("127.0.0.1", 0))
        sink.setblocking(False)
        source.setblocking(False)
        address = sink.getsockname()
        while True:
            for _ in range(datagrams_per_tick):
                source.sendto(b"x" * 160, address)
                with contextlib.suppress(BlockingIOError):
                    sink.recv(200)
            await asyncio.sleep(0.02)


class LoopLag:
    """How late the event loop wakes a 10 ms sleeper: the longest the loop was kept from its work."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(0.01)
            self.worst = max(self.worst, time.monotonic() - before - 0.01)

    def __enter__(self) -> LoopLag:
        self._task = asyncio.create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def test_a_leg_keeps_sending_while_long_prompts_decode_for_others(
    engine: EmbeddedMediaEngine, tmp_path: Path
) -> None:
    listener = RtpPeer(None)
    traffic = asyncio.create_task(other_calls_traffic())
    try:
        await rtp_call(engine, listener)
        # Opus legs (WhatsApp's codec) that have not negotiated yet: a play decodes and encodes all the same.
        players = [await engine.create_leg(f"wa-{n}", Events(), OPUS) for n in range(6)]
        files = [write_wav(tmp_path / f"long-{n}.wav", 60.0, 500.0 + 100 * n) for n in range(6)]
        await asyncio.sleep(0.3)
        with LoopLag() as lag:
            start = time.monotonic()
            await asyncio.gather(
                *(
                    leg.play(MediaLocator.for_path(path), playback_id=path.stem)
                    for leg, path in zip(players, files, strict=True)
                )
            )
            await asyncio.sleep(0.5)
            end = time.monotonic()
        arrivals = [when for when, _ in listener.audio if start <= when <= end]
        # Generous bounds: what is checked is that the loop is never held for seconds, not its speed.
        assert lag.worst < 1.0, f"the event loop was held for {lag.worst:.2f} s"
        assert arrivals and max(np.diff([start, *arrivals, end])) < 1.0, "the ticker stopped sending"
        for leg in players:
            assert isinstance(leg, EmbeddedLeg) and leg.session.playout is not None
            assert len(leg.session.playout.frames) == 1000, "20 s of the 60 s file were decoded"
    finally:
        traffic.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await traffic
        await listener.close()


async def test_keys_with_pauses_reach_the_peer(engine: EmbeddedMediaEngine) -> None:
    peer = RtpPeer(None)
    try:
        leg = await rtp_call(engine, peer)
        await leg.send_dtmf("w1w2")
        await asyncio.sleep(0.2)
        assert [digit for digit, _ in peer.digits] == ["1", "2"]
    finally:
        await peer.close()


async def test_keys_from_a_bridged_leg_wait_in_a_bounded_queue(engine: EmbeddedMediaEngine) -> None:
    peer = RtpPeer(None)
    try:
        leg = await rtp_call(engine, peer)
        assert isinstance(leg, EmbeddedLeg)
        for _ in range(10 * DtmfOut.MAX_QUEUED):
            leg.deliver_key("5", 100)
        assert len(leg.session.dtmf_out.queue) == DtmfOut.MAX_QUEUED
    finally:
        await peer.close()
