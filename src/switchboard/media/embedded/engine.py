"""`EmbeddedMediaEngine`: in-process media for WhatsApp legs, one shared 20 ms ticker for every leg."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import Callable, Sequence

from switchboard.errors import MediaError
from switchboard.media.audio import FrameCache, silence_frame
from switchboard.media.embedded.dtls import DtlsContext
from switchboard.media.embedded.leg import FRAME_SECONDS, EmbeddedLeg
from switchboard.media.engine import (
    Codec,
    LegSpec,
    MediaEventSink,
    MediaLeg,
    MediaMixer,
    TransportProfile,
)

logger = logging.getLogger(__name__)

HOUSEKEEPING_INTERVAL = 1.0
_MAX_LATE = 0.1
"""If the loop was blocked for longer than this, the ticker skips the missed ticks instead of bursting."""


class EmbeddedMediaEngine:
    """`MediaEngine` that terminates ICE/DTLS-SRTP itself and relays Opus without decoding.

    :param addresses: local IPv4 addresses to bind one UDP socket per leg on (host candidates).
    :param public_address: the address a 1:1 NAT maps those to; advertised in SDP (c= line and an extra
        host candidate with the same port).
    :param frame_cache: shared encoded-prompt cache (one per process); a private one if omitted.
    :param no_media_timeout: seconds without RTP from the peer before the leg fails (WhatsApp: 20).
    :param ice_timeout: seconds for ICE connectivity checks before the leg fails.
    :param dtls_timeout: seconds for the DTLS handshake after ICE before the leg fails.
    :param rtcp_interval: seconds between RTCP sender reports per leg.
    :param remote_networks: if given, only peer candidates inside these networks are tried (e.g.
        ["127.0.0.0/8"] in tests, or the networks a private deployment's peers live in).
    """

    def __init__(
        self,
        *,
        addresses: Sequence[str] = ("127.0.0.1",),
        public_address: str | None = None,
        frame_cache: FrameCache | None = None,
        no_media_timeout: float = 20.0,
        ice_timeout: float = 15.0,
        dtls_timeout: float = 10.0,
        rtcp_interval: float = 5.0,
        remote_networks: Sequence[str] | None = None,
    ) -> None:
        if not addresses:
            raise ValueError("EmbeddedMediaEngine needs at least one local address")
        self.addresses = tuple(addresses)
        self.public_address = public_address
        self.frame_cache = frame_cache or FrameCache(max_entries=256)
        self.no_media_timeout = no_media_timeout
        self.ice_timeout = ice_timeout
        self.dtls_timeout = dtls_timeout
        self.rtcp_interval = rtcp_interval
        self.remote_networks = (
            tuple(ipaddress.ip_network(n, strict=False) for n in remote_networks) if remote_networks else None
        )
        self.silence = b""
        self._dtls_context: DtlsContext | None = None
        self._legs: dict[str, EmbeddedLeg] = {}
        self._active: set[EmbeddedLeg] = set()
        """Legs with SRTP up: the ticker sends for them."""
        self._handshaking: set[EmbeddedLeg] = set()
        """Legs in the DTLS handshake: the ticker drives their retransmission timer."""
        self._ticker: asyncio.Task[None] | None = None
        self.tick_overruns = 0

    @property
    def dtls_context(self) -> DtlsContext:
        if self._dtls_context is None:
            raise MediaError("the media engine is not started")
        return self._dtls_context

    async def start(self) -> None:
        if self._ticker is not None:
            return
        loop = asyncio.get_running_loop()
        self._dtls_context = await loop.run_in_executor(None, DtlsContext)
        self.silence = silence_frame()
        self._ticker = asyncio.create_task(self._run(), name="media-ticker")

    async def stop(self) -> None:
        for leg in list(self._legs.values()):
            await leg.close()
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None

    async def create_leg(self, leg_id: str, sink: MediaEventSink, spec: LegSpec) -> MediaLeg:
        if self._ticker is None:
            raise MediaError("the media engine is not started")
        if spec.profile is not TransportProfile.WEBRTC_CONTROLLING or Codec.OPUS not in spec.codecs:
            raise MediaError(f"the embedded engine does not support {spec.profile} legs with {spec.codecs}")
        if leg_id in self._legs:
            raise MediaError(f"media leg {leg_id!r} already exists")
        leg = EmbeddedLeg(self, leg_id, sink, spec)
        self._legs[leg_id] = leg
        return leg

    async def bridge(self, a: MediaLeg, b: MediaLeg) -> None:
        leg_a, leg_b = self._own(a), self._own(b)
        if leg_a is leg_b:
            raise MediaError("cannot bridge a media leg to itself")
        for leg in (leg_a, leg_b):
            if leg.peer is not None and leg.peer not in (leg_a, leg_b):
                other = leg.peer
                other._unpeer()
                leg._unpeer()
        leg_a.peer, leg_b.peer = leg_b, leg_a
        leg_a._fwd_resync = leg_b._fwd_resync = True

    async def unbridge(self, a: MediaLeg, b: MediaLeg) -> None:
        leg_a, leg_b = self._own(a), self._own(b)
        if leg_a.peer is leg_b:
            leg_a._unpeer()
        if leg_b.peer is leg_a:
            leg_b._unpeer()

    async def create_mixer(self, mixer_id: str) -> MediaMixer:
        raise MediaError("conference mixing is not available in the embedded engine")

    def _own(self, leg: MediaLeg) -> EmbeddedLeg:
        if not isinstance(leg, EmbeddedLeg) or self._legs.get(leg.id) is not leg:
            raise MediaError(f"media leg {leg.id!r} does not belong to this engine")
        return leg

    def _forget(self, leg: EmbeddedLeg) -> None:
        if self._legs.get(leg.id) is leg:
            del self._legs[leg.id]
        self._active.discard(leg)
        self._handshaking.discard(leg)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        next_housekeeping = next_tick + HOUSEKEEPING_INTERVAL
        next_rtcp = next_tick + self.rtcp_interval
        while True:
            next_tick += FRAME_SECONDS
            delay = next_tick - loop.time()
            if delay < -_MAX_LATE:
                self.tick_overruns += 1
                next_tick = loop.time()
                delay = 0.0
            await asyncio.sleep(delay if delay > 0 else 0)
            now = time.monotonic()
            if self._handshaking:
                for leg in tuple(self._handshaking):
                    self._guard(leg, leg._dtls_timer, now)
            for leg in tuple(self._active):
                try:
                    leg._tick(now)
                except Exception as exc:
                    self._crash(leg, exc)
            if now >= next_housekeeping:
                next_housekeeping = now + HOUSEKEEPING_INTERVAL
                for leg in tuple(self._legs.values()):
                    self._guard(leg, leg._housekeeping, now)
            if now >= next_rtcp:
                next_rtcp = now + self.rtcp_interval
                for leg in tuple(self._active):
                    self._guard(leg, leg._send_rtcp, now)

    def _guard(self, leg: EmbeddedLeg, step: Callable[[float], None], now: float) -> None:
        try:
            step(now)
        except Exception as exc:
            self._crash(leg, exc)

    def _crash(self, leg: EmbeddedLeg, exc: Exception) -> None:
        logger.exception("media leg %s: internal error", leg.id)
        leg._fail(f"internal media error: {type(exc).__name__}: {exc}")
