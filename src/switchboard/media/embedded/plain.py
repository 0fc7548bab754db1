"""The `rtp` profile's shell: SIP media over a plain UDP socket pair, RTP/AVP or SDES-SRTP (RTP/SAVP).

No ICE: we send to the peer's SDP address from the moment the codec is agreed and latch onto where its
packets really come from (`symmetric.Latch`). Silence keeps flowing whenever there is nothing else to
send, also while our side is held (`set_sending(False)`), so NAT bindings and far-end no-media timers never
fire; nothing is sent while the peer's SDP says it does not receive (sendonly or inactive: hold). `answer`
may be called again with a re-offer (re-INVITE): the leg keeps its ports, keys and stream and returns the
matching answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from typing import Any

import pylibsrtp

from switchboard.errors import MediaError
from switchboard.media.codecs import AudioFormat, default_payload_type
from switchboard.media.embedded.leg import EmbeddedLeg, LegContext
from switchboard.media.embedded.sdes import new_crypto, offer_crypto, srtp_session
from switchboard.media.embedded.sdp import (
    SRTP_SUITES,
    AudioDescription,
    CryptoAttribute,
    SdpError,
    build_rtp_description,
    parse_audio_description,
)
from switchboard.media.embedded.symmetric import Address, Latch
from switchboard.media.types import LegSpec, MediaEventSink, SrtpPolicy


class RtpLeg(EmbeddedLeg):
    """A leg of profile `rtp`."""

    hold_silence = True

    def __init__(self, context: LegContext, leg_id: str, sink: MediaEventSink, spec: LegSpec) -> None:
        super().__init__(context, leg_id, sink, spec)
        relatch = context.settings.relatch_after
        self._rtp_latch = Latch(relatch)
        self._rtcp_latch = Latch(relatch)
        self._rtp_socket: asyncio.DatagramTransport | None = None
        self._rtcp_socket: asyncio.DatagramTransport | None = None
        self._address = ""
        self._port = 0
        self._rtcp_mux = False
        self._tx: Any = None
        self._rx: Any = None
        self._local_crypto: CryptoAttribute | None = None
        self._remote_crypto: CryptoAttribute | None = None
        self._offered: tuple[AudioFormat, ...] | None = None
        self._offered_crypto: tuple[CryptoAttribute, ...] = ()
        self._remote: AudioDescription | None = None
        self._session_id = secrets.randbits(62)
        self._version = 0
        self._peer_sends = True
        self._silent_since = 0.0
        """Start of the no-media timer: media start, or the end of a hold by the peer."""
        self._bytes_sent = 0
        self._bytes_received = 0
        self._diag.ice_state = self._diag.dtls_state = "unused"

    # -- offer / answer ---------------------------------------------------------------------------------

    async def answer(self, remote_offer: str) -> str:
        self._check_open("answer")
        if self._offered is not None and self._remote is None:
            raise MediaError("answer() on a leg that made an offer: use accept_answer()")
        remote = parse_audio_description(remote_offer, what="offer", codecs=self._audio_codecs, webrtc=False)
        current = self.session.audio
        audio = None
        if current is not None:
            audio = next((f for f in remote.formats if f.codec is current.codec), None)
        audio = audio or remote.format_for(self._audio_codecs)
        if audio is None:
            raise SdpError("SDP offer has no codec in common")
        local_crypto, remote_crypto = self._answer_crypto(remote)
        await self._bind()
        event_pt = remote.telephone_event_pt if self._wants_events else None
        self._apply(remote, audio, event_pt, local_crypto, remote_crypto)
        self._version += 1
        return build_rtp_description(
            session_id=self._session_id,
            version=self._version,
            address=self._advertised,
            port=self._port,
            audio=[audio],
            telephone_event_pt=event_pt,
            direction=remote.direction.answer(),
            crypto=[local_crypto] if local_crypto is not None else [],
            rtcp_mux=remote.rtcp_mux,
            media_lines=remote.media_lines,
            index=remote.index,
        )

    def _answer_crypto(
        self, remote: AudioDescription
    ) -> tuple[CryptoAttribute | None, CryptoAttribute | None]:
        policy = self.spec.srtp
        secure = "SAVP" in remote.proto.upper()
        if policy is SrtpPolicy.NONE:
            if secure:
                raise SdpError(f"SDP offer requires SRTP ({remote.proto}); this leg takes plain RTP only")
            return None, None
        if not remote.crypto:
            if secure or policy is SrtpPolicy.SDES:
                raise SdpError(
                    f"SDP offer has no usable a=crypto line (supported: {', '.join(SRTP_SUITES)}, no MKI)"
                )
            return None, None
        chosen = remote.crypto[0]
        local = self._local_crypto
        if local is None or local.suite != chosen.suite or local.tag != chosen.tag:
            local = new_crypto(chosen.tag, chosen.suite)
        return local, chosen

    async def offer(self) -> str:
        self._check_open("offer")
        await self._bind()
        formats = [AudioFormat(c, default_payload_type(c)) for c in self._audio_codecs]
        event_pt = 101 if self._wants_events else None
        self._offered = tuple(formats)
        self._offered_crypto = offer_crypto() if self.spec.srtp is SrtpPolicy.SDES else ()
        self._configure(formats[0], event_pt)
        self._version += 1
        return build_rtp_description(
            session_id=self._session_id,
            version=self._version,
            address=self._advertised,
            port=self._port,
            audio=formats,
            telephone_event_pt=event_pt,
            crypto=self._offered_crypto,
        )

    async def accept_answer(self, remote_answer: str) -> None:
        self._check_open("accept an answer")
        if self._offered is None:
            raise MediaError("accept_answer() needs an offer() first")
        remote = parse_audio_description(
            remote_answer, what="answer", codecs=self._audio_codecs, webrtc=False
        )
        offered = {f.codec for f in self._offered}
        audio = next((f for f in remote.formats if f.codec in offered), None)
        if audio is None:
            raise SdpError("SDP answer has no codec we offered")
        local_crypto = remote_crypto = None
        if self._offered_crypto:
            for candidate in remote.crypto:
                local_crypto = next(
                    (
                        c
                        for c in self._offered_crypto
                        if c.tag == candidate.tag and c.suite == candidate.suite
                    ),
                    None,
                )
                if local_crypto is not None:
                    remote_crypto = candidate
                    break
            if remote_crypto is None:
                raise SdpError("SDP answer accepts none of the a=crypto lines we offered")
        event_pt = remote.telephone_event_pt if self._wants_events else None
        self._apply(remote, audio, event_pt, local_crypto, remote_crypto)

    def _apply(
        self,
        remote: AudioDescription,
        audio: AudioFormat,
        event_pt: int | None,
        local_crypto: CryptoAttribute | None,
        remote_crypto: CryptoAttribute | None,
    ) -> None:
        address = remote.connection_address
        if not address:
            raise SdpError("SDP has no connection address (c=)")
        self._configure(audio, event_pt)
        rtp: Address = (address, remote.port)
        rtcp: Address = (address, remote.rtcp_port or remote.port + 1)
        if self._rtp_latch.signalled != rtp:
            self._rtp_latch.reset(rtp)
        if self._rtcp_latch.signalled != rtcp:
            self._rtcp_latch.reset(rtcp)
        self._rtcp_mux = remote.rtcp_mux
        if local_crypto != self._local_crypto:
            self._local_crypto = local_crypto
            self._tx = srtp_session(local_crypto, outbound=True) if local_crypto is not None else None
        if remote_crypto != self._remote_crypto:
            self._remote_crypto = remote_crypto
            self._rx = srtp_session(remote_crypto, outbound=False) if remote_crypto is not None else None
        held_by_peer = remote.on_hold_address
        self.session.peer_receives = remote.direction.receives and not held_by_peer
        peer_sends = remote.direction.sends and not held_by_peer
        now = time.monotonic()
        if peer_sends and (not self._peer_sends or self._remote is None):
            self._silent_since = now
        self._peer_sends = peer_sends
        self._remote = remote
        self._start_ticking()

    @property
    def _advertised(self) -> str:
        return self.spec.advertised_address or self._context.settings.public_address or self._address

    async def _bind(self) -> None:
        if self._rtp_socket is not None:
            return
        self._address = self._context.settings.addresses[0]
        self._rtp_socket, self._rtcp_socket, self._port = await self._context.ports.bind_pair(
            self._address, self._on_rtp_datagram, self._on_rtcp_datagram
        )

    # -- receive ---------------------------------------------------------------------------------------

    def _on_rtp_datagram(self, data: bytes, source: Address) -> None:
        if len(data) < 12 or data[0] >> 6 != 2 or self._remote is None:
            return
        now = time.monotonic()
        latch = self._rtp_latch
        if not latch.admits(source, now):
            return
        if 191 < data[1] < 224:
            if self._rtcp_mux:
                self._take_rtcp(data, now)
            return
        if self._rx is not None:
            try:
                packet = self._rx.unprotect(data)
            except pylibsrtp.Error:
                return
        else:
            packet = data
        self._bytes_received += len(data)
        if latch.heard(source, now):
            self._diag.selected_pair = f"{self._address}:{self._port} <-> {source[0]}:{source[1]} (latched)"
            self.media_up()
        self.rtp_received(packet, now)

    def _on_rtcp_datagram(self, data: bytes, source: Address) -> None:
        if len(data) < 8 or data[0] >> 6 != 2 or self._remote is None:
            return
        now = time.monotonic()
        if not self._rtcp_latch.admits(source, now):
            return
        if self._take_rtcp(data, now):
            self._rtcp_latch.heard(source, now)

    def _take_rtcp(self, data: bytes, now: float) -> bool:
        if self._rx is not None:
            try:
                data = self._rx.unprotect_rtcp(data)
            except pylibsrtp.Error:
                return False
        self.rtcp_received(data, now)
        return True

    # -- transport hooks --------------------------------------------------------------------------------

    def _send_rtp(self, packet: bytes) -> None:
        destination = self._rtp_latch.destination
        socket = self._rtp_socket
        if destination is None or socket is None:
            return
        data = self._tx.protect(packet) if self._tx is not None else packet
        socket.sendto(data, destination)
        self._bytes_sent += len(data)

    def _send_rtcp(self, packet: bytes) -> None:
        if self._rtcp_mux:
            destination, socket = self._rtp_latch.destination, self._rtp_socket
        else:
            destination, socket = self._rtcp_latch.destination, self._rtcp_socket
        if destination is None or socket is None:
            return
        if self._tx is not None:
            try:
                packet = self._tx.protect_rtcp(packet)
            except pylibsrtp.Error:
                return
        socket.sendto(packet, destination)

    def _transport_check(self, now: float) -> tuple[str, str | None] | None:
        if self._remote is None:
            return None
        if not self._peer_sends:
            self._silent_since = now
            return None
        silent = now - max(self.session.last_received, self._silent_since)
        if silent > self._context.settings.no_media_timeout:
            detail = "" if self.session.stats.packets_received else " (none received since the answer)"
            return f"no RTP from the peer for {silent:.0f} s{detail}", None
        return None

    def _transport_bytes(self) -> tuple[int, int]:
        return self._bytes_sent, self._bytes_received

    async def _close_transport(self) -> None:
        for socket in (self._rtp_socket, self._rtcp_socket):
            if socket is not None:
                with contextlib.suppress(Exception):
                    socket.close()
        self._rtp_socket = self._rtcp_socket = None
