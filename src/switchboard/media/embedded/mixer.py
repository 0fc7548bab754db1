"""`EmbeddedMixer`: a conference on the engine's ticker. Every 20 ms each member hears the sum of the
others: members' received audio is decoded (a PCM tap on their session), resampled to 48 kHz and queued;
the tick takes one frame per member, mixes, and encodes `total - own` in each member's codec."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from switchboard.errors import MediaError
from switchboard.media.codecs import Encoder, PcmConverter, encoder_for
from switchboard.media.embedded.leg import EmbeddedLeg
from switchboard.media.engine import MediaLeg
from switchboard.media.types import Codec

Pcm = npt.NDArray[np.int16]

MIX_RATE = 48000
MIX_FRAME = MIX_RATE // 50
_PREROLL = 2
"""Frames a member's queue holds before it is mixed: one packet of arrival jitter absorbed."""
_MAX_QUEUED = 6


class _Member:
    def __init__(self, leg: EmbeddedLeg) -> None:
        self.leg = leg
        self.queue: deque[Pcm] = deque()
        self.queued = 0
        self.primed = False
        self._in: PcmConverter | None = None
        self._out: PcmConverter | None = None
        self._encoder: Encoder | None = None
        self._codec: Codec | None = None

    def __call__(self, pcm: Pcm, rate: int, now: float) -> None:
        if self._in is None or self._in.from_rate != rate:
            self._in = PcmConverter(rate, MIX_RATE)
        block = self._in.convert(pcm)
        self.queue.append(block)
        self.queued += block.size
        while self.queued > _MAX_QUEUED * MIX_FRAME:
            self.queued -= self.queue.popleft().size

    def take(self) -> Pcm | None:
        """One 20 ms frame at 48 kHz, or None while the member is silent or its queue refills."""
        if not self.primed:
            if self.queued < _PREROLL * MIX_FRAME:
                return None
            self.primed = True
        if self.queued < MIX_FRAME:
            self.primed = False
            return None
        out = np.empty(MIX_FRAME, dtype=np.int16)
        position = 0
        while position < MIX_FRAME:
            head = self.queue[0]
            count = min(MIX_FRAME - position, head.size)
            out[position : position + count] = head[:count]
            position += count
            if count == head.size:
                self.queue.popleft()
            else:
                self.queue[0] = head[count:]
        self.queued -= MIX_FRAME
        return out

    def encode(self, pcm: Pcm) -> bytes | None:
        audio = self.leg.format
        if audio is None:
            return None
        if self._codec is not audio.codec:
            self._codec = audio.codec
            rate = 48000 if audio.codec is Codec.OPUS else 8000
            self._out = PcmConverter(MIX_RATE, rate)
            self._encoder = encoder_for(audio.codec, input_rate=rate)
        assert self._out is not None and self._encoder is not None
        return self._encoder.encode_frame(self._out.convert(pcm))


class EmbeddedMixer:
    """`MediaMixer` of the embedded engine."""

    def __init__(
        self,
        mixer_id: str,
        own: Callable[[MediaLeg], EmbeddedLeg],
        join: Callable[[EmbeddedLeg, EmbeddedMixer | None], None],
        closed: Callable[[EmbeddedMixer], None],
    ) -> None:
        self._id = mixer_id
        self._own = own
        self._join = join
        self._closed_hook = closed
        self._members: dict[EmbeddedLeg, _Member] = {}
        self._closed = False
        self.frames_mixed = 0

    @property
    def id(self) -> str:
        return self._id

    @property
    def members(self) -> tuple[EmbeddedLeg, ...]:
        return tuple(self._members)

    async def add(self, leg: MediaLeg) -> None:
        if self._closed:
            raise MediaError(f"mixer {self._id!r} is closed")
        member_leg = self._own(leg)
        if member_leg in self._members:
            return
        self._join(member_leg, self)
        member = _Member(member_leg)
        self._members[member_leg] = member
        member_leg.set_fed(True)
        member_leg.session.add_pcm_tap(member)

    async def remove(self, leg: MediaLeg) -> None:
        member_leg = self._own(leg)
        if member_leg in self._members:
            self.detach(member_leg)
            self._join(member_leg, None)

    def detach(self, leg: EmbeddedLeg) -> None:
        """Take `leg` out without telling the engine (it is closing, or joining something else)."""
        member = self._members.pop(leg, None)
        if member is not None:
            leg.session.remove_pcm_tap(member)
            leg.set_fed(False)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for leg in tuple(self._members):
            self.detach(leg)
            self._join(leg, None)
        self._closed_hook(self)

    def tick(self, now: float) -> None:
        """Called by the engine's ticker before the legs': one mixed frame to every member."""
        members = tuple(self._members.values())
        if not members:
            return
        frames = [member.take() for member in members]
        total = np.zeros(MIX_FRAME, dtype=np.int32)
        for frame in frames:
            if frame is not None:
                total += frame
        for member, frame in zip(members, frames, strict=True):
            mix = total - frame if frame is not None else total
            payload = member.encode(np.clip(mix, -32768, 32767).astype(np.int16))
            if payload:
                member.leg.deliver_frame(payload, now)
        self.frames_mixed += 1
