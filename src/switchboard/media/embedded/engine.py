"""`EmbeddedMediaEngine`: in-process media for every transport profile, one shared 20 ms ticker for all
legs and mixers."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import Callable, Sequence

from switchboard.errors import MediaError
from switchboard.media.audio import MAX_PROMPT_SECONDS, FrameCache, silence_frame
from switchboard.media.embedded.bridge import Bridge
from switchboard.media.embedded.dtls import DtlsContext
from switchboard.media.embedded.leg import EmbeddedLeg, LegContext, LegSettings
from switchboard.media.embedded.mixer import EmbeddedMixer
from switchboard.media.embedded.plain import RtpLeg
from switchboard.media.embedded.ports import PortPool
from switchboard.media.embedded.stream import FRAME_SECONDS
from switchboard.media.embedded.webrtc import WebRtcLeg
from switchboard.media.engine import (
    LegSpec,
    MediaEventSink,
    MediaLeg,
    MediaMixer,
    SrtpPolicy,
    TransportProfile,
)

logger = logging.getLogger(__name__)

HOUSEKEEPING_INTERVAL = 1.0
_MAX_LATE = 0.1
"""If the loop was blocked for longer than this, the ticker skips the missed ticks instead of bursting."""


class EmbeddedMediaEngine:
    """`MediaEngine` that terminates ICE/DTLS-SRTP, SDES-SRTP and plain RTP itself; relays packets between
    legs of the same codec without decoding and transcodes between the others.

    :param addresses: local IPv4 addresses to bind on (ICE host candidates; the first one for plain RTP).
    :param public_address: the address a 1:1 NAT maps those to; advertised in SDP (c= line and an extra
        host candidate with the same port).
    :param frame_cache: shared encoded-prompt cache (one per process); a private one if omitted, which the
        engine closes when it stops.
    :param max_prompt_seconds: the longest audio a private `frame_cache` decodes for one play; a longer
        file plays its first `max_prompt_seconds` (and the log says so).
    :param no_media_timeout: seconds without RTP from the peer before the leg fails (WhatsApp: 20).
    :param ice_timeout: seconds for ICE connectivity checks before the leg fails.
    :param dtls_timeout: seconds for the DTLS handshake after ICE before the leg fails.
    :param rtcp_interval: seconds between RTCP sender reports per leg.
    :param remote_networks: if given, only peer candidates inside these networks are tried (e.g.
        ["127.0.0.0/8"] in tests, or the networks a private deployment's peers live in).
    :param rtp_ports: the UDP port range of `rtp` legs (an even RTP port and the next for RTCP).
    :param relatch_after: seconds of silence from a latched `rtp` peer before another source may latch.
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
        rtp_ports: tuple[int, int] = (20000, 29999),
        relatch_after: float = 1.0,
        max_prompt_seconds: float = MAX_PROMPT_SECONDS,
    ) -> None:
        if not addresses:
            raise ValueError("EmbeddedMediaEngine needs at least one local address")
        self.addresses = tuple(addresses)
        self.public_address = public_address
        self._owns_frame_cache = frame_cache is None
        self.frame_cache = frame_cache or FrameCache(max_entries=256, max_prompt_seconds=max_prompt_seconds)
        self.rtcp_interval = rtcp_interval
        self.settings = LegSettings(
            addresses=self.addresses,
            public_address=public_address,
            no_media_timeout=no_media_timeout,
            ice_timeout=ice_timeout,
            dtls_timeout=dtls_timeout,
            remote_networks=(
                tuple(ipaddress.ip_network(n, strict=False) for n in remote_networks)
                if remote_networks
                else None
            ),
            relatch_after=relatch_after,
        )
        self.ports = PortPool(*rtp_ports)
        self._dtls_context: DtlsContext | None = None
        self._legs: dict[str, EmbeddedLeg] = {}
        self._bridges: dict[EmbeddedLeg, Bridge] = {}
        self._mixers: set[EmbeddedMixer] = set()
        self._membership: dict[EmbeddedLeg, EmbeddedMixer] = {}
        self._ticker: asyncio.Task[None] | None = None
        self.tick_overruns = 0

    @property
    def dtls_context(self) -> DtlsContext:
        if self._dtls_context is None:
            raise MediaError("the media engine is not started")
        return self._dtls_context

    @property
    def frames_decoded(self) -> int:
        """Audio frames decoded by all live legs (zero when every bridge forwards and nothing records)."""
        return sum(leg.frames_decoded for leg in self._legs.values())

    async def start(self) -> None:
        if self._ticker is not None:
            return
        loop = asyncio.get_running_loop()
        self._dtls_context = await loop.run_in_executor(None, DtlsContext)
        silence_frame()
        self._ticker = asyncio.create_task(self._run(), name="media-ticker")

    async def stop(self) -> None:
        for mixer in tuple(self._mixers):
            await mixer.close()
        for leg in list(self._legs.values()):
            await leg.close()
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        if self._owns_frame_cache:
            self.frame_cache.close()

    async def create_leg(self, leg_id: str, sink: MediaEventSink, spec: LegSpec) -> MediaLeg:
        if self._ticker is None:
            raise MediaError("the media engine is not started")
        if leg_id in self._legs:
            raise MediaError(f"media leg {leg_id!r} already exists")
        if spec.profile is not TransportProfile.RTP and spec.srtp is not SrtpPolicy.NONE:
            raise MediaError(f"{spec.profile} legs always use DTLS-SRTP; srtp={spec.srtp} is for rtp legs")
        context = LegContext(
            settings=self.settings,
            frame_cache=self.frame_cache,
            dtls_context=self.dtls_context,
            ports=self.ports,
            released=self._released,
        )
        leg: EmbeddedLeg
        if spec.profile is TransportProfile.RTP:
            leg = RtpLeg(context, leg_id, sink, spec)
        else:
            leg = WebRtcLeg(context, leg_id, sink, spec)
        self._legs[leg_id] = leg
        return leg

    async def bridge(self, a: MediaLeg, b: MediaLeg) -> None:
        leg_a, leg_b = self._own(a), self._own(b)
        if leg_a is leg_b:
            raise MediaError("cannot bridge a media leg to itself")
        existing = self._bridges.get(leg_a)
        if existing is not None and existing is self._bridges.get(leg_b):
            return
        for leg in (leg_a, leg_b):
            self._detach(leg)
        bridge = Bridge(leg_a, leg_b)
        self._bridges[leg_a] = self._bridges[leg_b] = bridge
        bridge.open()

    async def unbridge(self, a: MediaLeg, b: MediaLeg) -> None:
        leg_a, leg_b = self._own(a), self._own(b)
        bridge = self._bridges.get(leg_a)
        if bridge is not None and bridge is self._bridges.get(leg_b):
            self._close_bridge(bridge)

    async def create_mixer(self, mixer_id: str) -> MediaMixer:
        if self._ticker is None:
            raise MediaError("the media engine is not started")
        mixer = EmbeddedMixer(mixer_id, own=self._own, join=self._join, closed=self._mixers.discard)
        self._mixers.add(mixer)
        return mixer

    # -- legs, bridges and mixers -----------------------------------------------------------------------

    def _own(self, leg: MediaLeg) -> EmbeddedLeg:
        if not isinstance(leg, EmbeddedLeg) or self._legs.get(leg.id) is not leg:
            raise MediaError(f"media leg {leg.id!r} does not belong to this engine")
        return leg

    def _join(self, leg: EmbeddedLeg, mixer: EmbeddedMixer | None) -> None:
        """A mixer takes `leg` in (leaving any bridge or other mixer), or lets it go (None)."""
        if mixer is None:
            self._membership.pop(leg, None)
            return
        self._detach(leg, keep=mixer)
        self._membership[leg] = mixer

    def _detach(self, leg: EmbeddedLeg, keep: EmbeddedMixer | None = None) -> None:
        bridge = self._bridges.get(leg)
        if bridge is not None:
            self._close_bridge(bridge)
        mixer = self._membership.get(leg)
        if mixer is not None and mixer is not keep:
            mixer.detach(leg)
            del self._membership[leg]

    def _close_bridge(self, bridge: Bridge) -> None:
        bridge.close()
        for leg in (bridge.a, bridge.b):
            if self._bridges.get(leg) is bridge:
                del self._bridges[leg]

    def _released(self, leg: EmbeddedLeg) -> None:
        self._detach(leg)
        if self._legs.get(leg.id) is leg:
            del self._legs[leg.id]

    # -- the ticker -------------------------------------------------------------------------------------

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
            for mixer in tuple(self._mixers):
                try:
                    mixer.tick(now)
                except Exception:
                    logger.exception("mixer %s: internal error", mixer.id)
            legs = tuple(self._legs.values())
            for leg in legs:
                self._guard(leg, leg.on_tick, now)
            if now >= next_housekeeping:
                next_housekeeping = now + HOUSEKEEPING_INTERVAL
                for leg in legs:
                    self._guard(leg, leg.on_housekeeping, now)
            if now >= next_rtcp:
                next_rtcp = now + self.rtcp_interval
                unix_time = time.time()
                for leg in legs:
                    try:
                        leg.on_rtcp_timer(now, unix_time)
                    except Exception as exc:
                        leg.crash(exc)

    @staticmethod
    def _guard(leg: EmbeddedLeg, step: Callable[[float], None], now: float) -> None:
        try:
            step(now)
        except Exception as exc:
            leg.crash(exc)
