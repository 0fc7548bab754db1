"""Real far ends for media tests, on 127.0.0.1: an aiortc peer (a browser, or Meta's edge) and a small
asyncio RTP peer (a SIP phone: PCMU/PCMA, optional SDES-SRTP through pylibsrtp, RFC 4733 keys)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fractions
import secrets
import time
from typing import Any

import numpy as np
import pylibsrtp
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from av import AudioFrame

from switchboard.media.audio import DTMF_FREQUENCIES
from switchboard.media.embedded.rtp import build_rtp, rtp_payload
from switchboard.media.embedded.sdp import parse_audio_description
from switchboard.media.engine import Codec, MediaEvent
from switchboard.media.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from switchboard.media.rfc4733 import DtmfReceiver, DtmfSender


class ToneTrack(MediaStreamTrack):
    """A paced mono 48 kHz sine, 20 ms per frame."""

    kind = "audio"

    def __init__(self, frequency: float) -> None:
        super().__init__()
        self._frequency = frequency
        self._pts = 0
        self._start: float | None = None

    async def recv(self) -> AudioFrame:
        if self._start is None:
            self._start = time.monotonic()
        wait = self._start + self._pts / 48000 - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        t = (np.arange(960) + self._pts) / 48000
        samples = (np.sin(2 * np.pi * self._frequency * t) * 8000).astype(np.int16)
        frame = AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 48000
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, 48000)
        self._pts += 960
        return frame


def meta_like(sdp: str) -> str:
    """Keep only Opus on the m-line, add telephone-event/8000 on PT 126, as Meta's offer has."""
    lines = sdp.split("\r\n")
    opus_pt = next(line.split()[0].split(":")[1] for line in lines if "opus/48000" in line)
    out = []
    for line in lines:
        if line.startswith("m=audio"):
            parts = line.split()
            line = " ".join([*parts[:3], opus_pt, "126"])
        elif line.startswith(("a=rtpmap:", "a=fmtp:", "a=rtcp-fb:")):
            pt = line.split(":", 1)[1].split()[0]
            if pt != opus_pt:
                continue
            if line.startswith("a=rtpmap:"):
                out.append(line)
                line = "a=rtpmap:126 telephone-event/8000"
        out.append(line)
    return "\r\n".join(out)


class AiortcPeer:
    """An aiortc RTCPeerConnection sending a tone and keeping what it hears (decoded by aiortc)."""

    def __init__(self, frequency: float) -> None:
        self.pc = RTCPeerConnection()
        self.pc.addTrack(ToneTrack(frequency))
        self._chunks: list[tuple[float, np.ndarray[Any, Any]]] = []
        self._reader: asyncio.Task[None] | None = None

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
        """A browser-like offer: aiortc's own (Opus, PCMU, PCMA; setup:actpass; full ICE, controlling)."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def accept(self, answer: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))

    async def answer(self, offer: str) -> str:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return str(self.pc.localDescription.sdp)

    def heard(self, seconds: float) -> np.ndarray[Any, Any]:
        since = time.monotonic() - seconds
        chunks = [chunk for when, chunk in self._chunks if when >= since]
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self.pc.close()


class _Socket(asyncio.DatagramProtocol):
    def __init__(self, owner: RtpPeer) -> None:
        self.owner = owner
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.owner.received(self, data, addr)


G711 = {Codec.PCMU: (0, ulaw_encode, ulaw_decode), Codec.PCMA: (8, alaw_encode, alaw_decode)}


class RtpPeer:
    """A SIP phone's media: sends a G.711 tone every 20 ms, keeps what it receives per socket.

    `send_from_other_port` sends from a second socket whose port is not in the SDP (a NAT in front).
    `srtp` adds an AES_CM_128_HMAC_SHA1_80 `a=crypto` line and protects/unprotects with pylibsrtp.
    """

    def __init__(
        self,
        frequency: float | None = 440.0,
        *,
        codec: Codec = Codec.PCMU,
        srtp: bool = False,
        send_from_other_port: bool = False,
        suite: str = "AES_CM_128_HMAC_SHA1_80",
    ) -> None:
        self.frequency = frequency
        self.codec = codec
        self.pt, self._encode, self._decode = G711[codec]
        self.srtp = srtp
        self.suite = suite
        self._other = send_from_other_port
        self.key = secrets.token_bytes(30)
        self._tx: Any = None
        self._rx: Any = None
        self.sdp_socket: _Socket | None = None
        self.send_socket: _Socket | None = None
        self.destination: tuple[str, int] | None = None
        self.telephone_event_pt = 101
        self.audio: list[tuple[float, bytes]] = []
        self.packets_by_socket: dict[int, int] = {}
        self.digits: list[tuple[str, int]] = []
        self._dtmf = DtmfReceiver()
        self._task: asyncio.Task[None] | None = None
        self._seq = secrets.randbits(16)
        self._ts = secrets.randbits(32)
        self.ssrc = secrets.randbits(32)
        self.sending = True
        self.queued: list[np.ndarray[Any, Any]] = []
        """8 kHz frames sent before the tone (e.g. in-band keys)."""

    def switch_codec(self, codec: Codec) -> None:
        self.codec = codec
        self.pt, self._encode, self._decode = G711[codec]

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        _, self.sdp_socket = await loop.create_datagram_endpoint(
            lambda: _Socket(self), local_addr=("127.0.0.1", 0)
        )
        self.send_socket = self.sdp_socket
        if self._other:
            _, self.send_socket = await loop.create_datagram_endpoint(
                lambda: _Socket(self), local_addr=("127.0.0.1", 0)
            )

    @property
    def port(self) -> int:
        assert self.sdp_socket is not None and self.sdp_socket.transport is not None
        return int(self.sdp_socket.transport.get_extra_info("sockname")[1])

    def offer(self, direction: str = "sendrecv", version: int = 1) -> str:
        proto = "RTP/SAVP" if self.srtp else "RTP/AVP"
        lines = [
            "v=0",
            f"o=phone 1 {version} IN IP4 127.0.0.1",
            "s=call",
            "c=IN IP4 127.0.0.1",
            "t=0 0",
            f"m=audio {self.port} {proto} {self.pt} 101",
            f"a=rtpmap:{self.pt} {self.codec.value}/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-15",
            "a=ptime:20",
            f"a={direction}",
        ]
        if self.srtp:
            lines.append(f"a=crypto:1 {self.suite} inline:{base64.b64encode(self.key).decode()}")
        return "\r\n".join(lines) + "\r\n"

    def accept(self, sdp: str) -> None:
        """Our engine's offer or answer: where to send, its key, its telephone-event PT."""
        description = parse_audio_description(sdp, what="answer", codecs=(self.codec,), webrtc=False)
        assert description.connection_address is not None
        self.destination = (description.connection_address, description.port)
        fmt = description.format_for([self.codec])
        assert fmt is not None and fmt.payload_type == self.pt
        self.telephone_event_pt = description.telephone_event_pt or 101
        if self.srtp:
            assert description.crypto, sdp
            self._tx = _session(self.key, self.suite, outbound=True)
            self._rx = _session(description.crypto[0].key_salt, description.crypto[0].suite, outbound=False)

    def answer(self, offer: str) -> str:
        """Answer our engine's offer (plain or SDES): PCMU/PCMA + telephone-event."""
        self.accept(offer)
        return self.offer()

    def begin(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        t0 = time.monotonic()
        n = 0
        phase = 0
        while True:
            n += 1
            await asyncio.sleep(max(0.0, t0 + n * 0.02 - time.monotonic()))
            if self.queued:
                self.send(self.pt, self._encode(self.queued.pop(0)), marker=False, advance=160)
                continue
            if not self.sending or self.frequency is None:
                continue
            t = (np.arange(160) + phase) / 8000
            phase += 160
            pcm = (np.sin(2 * np.pi * self.frequency * t) * 8000).astype(np.int16)
            self.send(self.pt, self._encode(pcm), marker=False, advance=160)

    def send(
        self, pt: int, payload: bytes, *, marker: bool, advance: int, timestamp: int | None = None
    ) -> None:
        self._seq = (self._seq + 1) & 0xFFFF
        self._ts = (self._ts + advance) & 0xFFFFFFFF
        packet = build_rtp(
            payload_type=pt,
            sequence=self._seq,
            timestamp=self._ts if timestamp is None else timestamp,
            ssrc=self.ssrc,
            payload=payload,
            marker=marker,
        )
        if self._tx is not None:
            packet = self._tx.protect(packet)
        assert self.send_socket is not None and self.send_socket.transport is not None
        if self.destination is not None:
            self.send_socket.transport.sendto(packet, self.destination)

    async def press(self, digits: str) -> None:
        for digit in digits:
            start = (self._ts + 160) & 0xFFFFFFFF
            for marker, _duration, payload in DtmfSender(digit, duration_ms=100).packets():
                self.send(self.telephone_event_pt, payload, marker=marker, advance=0, timestamp=start)
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.08)

    def press_inband(self, digits: str, duration_ms: int = 120) -> None:
        """Queue keys as Q.23 tone pairs in the audio (the tone pauses meanwhile)."""
        for digit in digits:
            low, high = DTMF_FREQUENCIES[digit]
            t = np.arange(8 * duration_ms) / 8000
            tone = (np.sin(2 * np.pi * low * t) + np.sin(2 * np.pi * high * t)) * 6000
            pcm = np.concatenate([tone, np.zeros(8 * 80)]).astype(np.int16)
            pcm = np.concatenate([pcm, np.zeros(-pcm.size % 160, dtype=np.int16)])
            self.queued += [pcm[i : i + 160] for i in range(0, pcm.size, 160)]

    def received(self, socket: _Socket, data: bytes, addr: tuple[str, int]) -> None:
        self.packets_by_socket[id(socket)] = self.packets_by_socket.get(id(socket), 0) + 1
        if 191 < data[1] < 224:
            return
        if self._rx is not None:
            try:
                data = self._rx.unprotect(data)
            except pylibsrtp.Error:
                return
        pt = data[1] & 0x7F
        if pt == self.pt:
            self.audio.append((time.monotonic(), rtp_payload(data)))
        elif pt == self.telephone_event_pt:
            result = self._dtmf.receive(int.from_bytes(data[4:8], "big"), rtp_payload(data))
            if result is not None:
                self.digits.append(result)

    def heard(self, seconds: float) -> np.ndarray[Any, Any]:
        since = time.monotonic() - seconds
        payloads = [p for when, p in self.audio if when >= since]
        return (
            np.concatenate([self._decode(p) for p in payloads]) if payloads else np.zeros(0, dtype=np.int16)
        )

    def packets_on(self, socket: _Socket | None) -> int:
        return self.packets_by_socket.get(id(socket), 0)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for socket in {id(s): s for s in (self.sdp_socket, self.send_socket) if s is not None}.values():
            if socket.transport is not None:
                socket.transport.close()


def _session(key: bytes, suite: str, *, outbound: bool) -> Any:
    profile = (
        pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80
        if suite.endswith("_80")
        else pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32
    )
    policy = pylibsrtp.Policy(
        key=key,
        ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND if outbound else pylibsrtp.Policy.SSRC_ANY_INBOUND,
        srtp_profile=profile,
    )
    return pylibsrtp.Session(policy)


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
