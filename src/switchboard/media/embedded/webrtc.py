"""The two WebRTC profiles' shell: ICE (aioice) + sans-I/O DTLS-SRTP + pylibsrtp around an `RtpSession`.

`webrtc_controlling` is Meta's edge: it is ICE-lite, so we run full ICE as the controlling agent and are
the DTLS client (`a=setup:active` to its actpass). `webrtc_controlled` is a browser: a full ICE agent that
controls when it offers (RFC 8445 §6.1.1), so answering it we are controlled; we control when we offer. Our
DTLS role follows RFC 5763 §5: answering actpass we take active (the handshake starts with the answer),
answering active we are passive (DTLS server), answering passive we are active.
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
from switchboard.media.embedded.dtls import DtlsRole, DtlsSrtpSession, DtlsState
from switchboard.media.embedded.ice import IceAgent
from switchboard.media.embedded.leg import EmbeddedLeg
from switchboard.media.embedded.sdp import (
    AudioDescription,
    DtlsSetup,
    MediaLine,
    build_description,
    parse_audio_description,
)
from switchboard.media.types import TransportProfile


class WebRtcLeg(EmbeddedLeg):
    """A leg of profile `webrtc_controlling` or `webrtc_controlled`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ice: IceAgent | None = None
        self._dtls: DtlsSrtpSession | None = None
        self._tx: Any = None
        self._rx: Any = None
        self._remote: AudioDescription | None = None
        self._offered: tuple[AudioFormat, ...] | None = None
        self._connect_task: asyncio.Task[None] | None = None
        self._dtls_started_at = 0.0
        self._bytes_sent = 0
        self._bytes_received = 0

    # -- offer / answer ---------------------------------------------------------------------------------

    async def answer(self, remote_offer: str) -> str:
        self._check_open("answer")
        remote = parse_audio_description(remote_offer, what="offer", codecs=self._audio_codecs)
        if remote.setup is DtlsSetup.ACTIVE:
            setup, role = DtlsSetup.PASSIVE, DtlsRole.SERVER
        else:
            setup, role = DtlsSetup.ACTIVE, DtlsRole.CLIENT
        audio = remote.format_for(self._audio_codecs)
        if audio is None:  # parse_audio_description found one of them
            raise MediaError("SDP offer has no codec in common")
        event_pt = remote.telephone_event_pt if self._wants_events else None
        controlling = self.spec.profile is TransportProfile.WEBRTC_CONTROLLING
        self._apply_remote(remote, role, audio, event_pt)
        candidates = await self._gather(controlling)
        local = self._build(
            candidates,
            setup,
            remote.mid or None,
            [audio],
            event_pt,
            remote.media_lines,
            remote.index,
        )
        self._start_connect()
        return local

    async def offer(self) -> str:
        self._check_open("offer")
        candidates = await self._gather(controlling=True)
        formats = [AudioFormat(codec, default_payload_type(codec)) for codec in self._audio_codecs]
        self._offered = tuple(formats)
        event_pt = 126 if self._wants_events else None
        self._configure(formats[0], event_pt)
        return self._build(candidates, DtlsSetup.ACTPASS, "0", formats, event_pt, (), 0)

    async def accept_answer(self, remote_answer: str) -> None:
        self._check_open("accept an answer")
        if self._offered is None:
            raise MediaError("accept_answer() needs an offer() first")
        remote = parse_audio_description(remote_answer, what="answer", codecs=self._audio_codecs)
        if remote.setup is DtlsSetup.ACTIVE:
            role = DtlsRole.SERVER
        elif remote.setup is DtlsSetup.PASSIVE:
            role = DtlsRole.CLIENT
        else:
            raise MediaError(f"SDP answer has a=setup:{remote.setup}; an answer must be active or passive")
        offered = {f.codec for f in self._offered}
        # The answer's first codec we offered, with the answerer's payload type number.
        answered = next((f for f in remote.formats if f.codec in offered), None)
        if answered is None:
            raise MediaError("SDP answer has no codec we offered")
        event_pt = remote.telephone_event_pt if self._wants_events else None
        self._apply_remote(remote, role, answered, event_pt)
        self._start_connect()

    def _apply_remote(
        self, remote: AudioDescription, role: DtlsRole, audio: AudioFormat, event_pt: int | None
    ) -> None:
        if self._remote is not None:
            raise MediaError(f"media leg {self.id!r} already has a remote description")
        if not remote.candidates and not remote.connection_address:
            raise MediaError("SDP has no ICE candidates and no connection address")
        self._remote = remote
        self._configure(audio, event_pt)
        self._dtls = DtlsSrtpSession(self._context.dtls_context, role, remote.fingerprints)

    async def _gather(self, controlling: bool) -> list[str]:
        if self._ice is None:
            self._ice = IceAgent(self._on_datagram, ice_controlling=controlling)
        ice = self._ice
        addresses = self._context.settings.addresses
        if not ice.local_candidates:
            candidates = await ice.gather(addresses)
            if not candidates:
                raise MediaError(f"could not bind a UDP socket on any of {list(addresses)}")
        result = []
        public = self._context.settings.public_address
        for candidate in ice.local_candidates:
            if public is not None:
                priority = candidate.priority + 1
                result.append(f"{candidate.foundation}1 1 udp {priority} {public} {candidate.port} typ host")
            result.append(candidate.to_sdp())
        return result

    def _build(
        self,
        candidates: list[str],
        setup: DtlsSetup,
        mid: str | None,
        audio: list[AudioFormat],
        event_pt: int | None,
        media_lines: tuple[MediaLine, ...],
        index: int,
    ) -> str:
        assert self._ice is not None
        first = self._ice.local_candidates[0]
        address = self._context.settings.public_address or first.host
        return build_description(
            session_id=secrets.randbits(62),
            address=address,
            port=first.port,
            ice_ufrag=self._ice.local_username,
            ice_pwd=self._ice.local_password,
            fingerprint=self._context.dtls_context.fingerprint,
            setup=setup,
            audio=audio,
            telephone_event_pt=event_pt,
            candidates=candidates,
            ssrc=self.session.stream.ssrc,
            cname=self.session.stats.cname,
            mid=mid,
            media_lines=media_lines,
            index=index,
        )

    # -- connectivity -----------------------------------------------------------------------------------

    def _start_connect(self) -> None:
        self._connect_task = asyncio.create_task(self._connect(), name=f"media-connect-{self.id}")

    async def _connect(self) -> None:
        remote, ice, dtls = self._remote, self._ice, self._dtls
        assert remote is not None and ice is not None and dtls is not None
        settings = self._context.settings
        ice.remote_username = remote.ice_ufrag
        ice.remote_password = remote.ice_pwd
        ice.remote_is_lite = remote.ice_lite
        candidates = list(remote.candidates)
        if not candidates and remote.connection_address:
            candidates = [f"1 1 udp 2130706431 {remote.connection_address} {remote.port} typ host"]
        await ice.add_remote_candidates(candidates, settings.remote_networks)
        self._set_state("ice", "checking")
        try:
            await asyncio.wait_for(ice.connect(), settings.ice_timeout)
        except (ConnectionError, TimeoutError):
            tried = ice.tried_pairs()
            if not tried:
                reason = (
                    "ICE failed: the peer offered no candidate this server may use "
                    f"({len(candidates)} in its SDP; check [server] media_remote_networks)"
                )
            else:
                reason = (
                    f"ICE failed: no candidate pair answered connectivity checks (tried {', '.join(tried)})"
                )
            self.fail(reason, "ice")
            return
        ice.on_connected()
        self._diag.selected_pair = ice.selected_pair()
        self._set_state("ice", "completed")
        now = time.monotonic()
        self._dtls_started_at = now
        self._set_state("dtls", "connecting")
        for datagram in dtls.start(now):
            ice.send_datagram(datagram)
        self._check_dtls()

    def _on_datagram(self, data: bytes) -> None:
        first = data[0]
        if 127 < first < 192:
            rx = self._rx
            if rx is None:
                return
            self._bytes_received += len(data)
            if 191 < data[1] < 224:
                try:
                    packet = rx.unprotect_rtcp(data)
                except pylibsrtp.Error:
                    return
                self.rtcp_received(packet, time.monotonic())
                return
            try:
                packet = rx.unprotect(data)
            except pylibsrtp.Error:
                return
            self.rtp_received(packet, time.monotonic())
        elif 19 < first < 64:
            dtls = self._dtls
            if dtls is None or self._ice is None:
                return
            out, _ = dtls.receive(data, time.monotonic())
            for datagram in out:
                self._ice.send_datagram(datagram)
            self._check_dtls()

    def _check_dtls(self) -> None:
        dtls = self._dtls
        if dtls is None or self._failed:
            return
        if dtls.state is DtlsState.CONNECTED and self._tx is None:
            self._tx, self._rx = dtls.tx_srtp, dtls.rx_srtp
            self._set_state("dtls", "connected")
            self.session.last_received = time.monotonic()
            self._start_ticking()
            self.media_up()
        elif dtls.state is DtlsState.FAILED:
            self.fail(dtls.failure or "DTLS handshake failed", "dtls")
        elif dtls.state is DtlsState.CLOSED and self._tx is not None:
            self.fail("the peer closed the media session (DTLS close_notify)", "dtls", clean=True)

    # -- transport hooks --------------------------------------------------------------------------------

    def _send_rtp(self, packet: bytes) -> None:
        tx, ice = self._tx, self._ice
        if tx is None or ice is None:
            return
        data = tx.protect(packet)
        ice.send_datagram(data)
        self._bytes_sent += len(data)

    def _send_rtcp(self, packet: bytes) -> None:
        try:
            data = self._tx.protect_rtcp(packet)
        except pylibsrtp.Error:
            return
        assert self._ice is not None
        self._ice.send_datagram(data)

    def _transport_tick(self, now: float) -> None:
        dtls = self._dtls
        if dtls is None or dtls.next_timeout is None or now < dtls.next_timeout or self._ice is None:
            return
        for datagram in dtls.handle_timeout(now):
            self._ice.send_datagram(datagram)
        self._check_dtls()

    def _transport_check(self, now: float) -> tuple[str, str | None] | None:
        settings = self._context.settings
        if self._tx is not None:
            if self._ice is not None and self._ice.closed:
                return "ICE failed: consent expired (the peer stopped answering connectivity checks)", "ice"
            silent = now - self.session.last_received
            if silent > settings.no_media_timeout:
                detail = (
                    "" if self.session.stats.packets_received else " (none received since DTLS connected)"
                )
                return f"no RTP from the peer for {silent:.0f} s{detail}", None
        elif self._dtls_started_at and now - self._dtls_started_at > settings.dtls_timeout:
            return (
                f"DTLS handshake timed out after {settings.dtls_timeout:.0f} s "
                "(ICE connected but the peer did not complete DTLS)",
                "dtls",
            )
        return None

    def _transport_bytes(self) -> tuple[int, int]:
        return self._bytes_sent, self._bytes_received

    def _selected_pair(self) -> str | None:
        return self._ice.selected_pair() if self._ice is not None else None

    async def _close_transport(self) -> None:
        ice = self._ice
        if self._dtls is not None and ice is not None:
            for datagram in self._dtls.close():
                ice.send_datagram(datagram)
            if self._diag.dtls_state != "failed":
                self._set_state("dtls", "closed")
        if self._connect_task is not None:
            self._connect_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connect_task
        if ice is not None:
            with contextlib.suppress(Exception):
                await ice.close()
        if self._diag.ice_state != "failed":
            self._set_state("ice", "closed")
