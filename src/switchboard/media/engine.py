"""The media engine port: what the platform asks of a media engine, whatever it is built on.

The embedded engine (`media.embedded`) runs in-process; a driver for rtpengine's ng protocol fits the same
interface: `answer`/`offer`/`accept_answer` are SDP offer/answer rewriting, `play` is "play media",
`send_dtmf` is "play DTMF", `MediaEvent`s carry its DTMF events, `start_recording`/`stop_recording` map to
its recording commands, `bridge` joins two legs of one rtpengine call and a mixer is a conference.
Value types live in `media.types` and are re-exported here.
"""

from __future__ import annotations

from typing import Protocol

from switchboard.media.types import (
    DTMF_DIGITS,
    DTMF_PAUSES,
    MAX_DTMF_DIGITS,
    WHATSAPP_LEG,
    AudioSource,
    Codec,
    DtmfMode,
    DtmfReceived,
    DtmfSource,
    InvalidDtmf,
    LegSpec,
    MediaClosed,
    MediaDiagnostics,
    MediaEvent,
    MediaEventSink,
    MediaFailed,
    MediaLocator,
    MediaStarted,
    PlaybackFinished,
    RecordingFinished,
    RecordingFormat,
    SrtpPolicy,
    Tone,
    TransportProfile,
    UnplayableAudio,
    check_dtmf,
)

__all__ = [
    "DTMF_DIGITS",
    "DTMF_PAUSES",
    "MAX_DTMF_DIGITS",
    "WHATSAPP_LEG",
    "AudioSource",
    "Codec",
    "DtmfMode",
    "DtmfReceived",
    "DtmfSource",
    "InvalidDtmf",
    "LegSpec",
    "MediaClosed",
    "MediaDiagnostics",
    "MediaEngine",
    "MediaEvent",
    "MediaEventSink",
    "MediaFailed",
    "MediaLeg",
    "MediaLocator",
    "MediaMixer",
    "MediaStarted",
    "PlaybackFinished",
    "RecordingFinished",
    "RecordingFormat",
    "SrtpPolicy",
    "Tone",
    "TransportProfile",
    "UnplayableAudio",
    "check_dtmf",
]


class MediaLeg(Protocol):
    """One call's media: one peer, one audio stream."""

    @property
    def id(self) -> str: ...

    @property
    def spec(self) -> LegSpec: ...

    async def answer(self, remote_offer: str) -> str:
        """Take the peer's SDP offer and return our SDP answer. Connectivity starts at once.

        An `rtp` leg takes a new offer on the same session (a re-INVITE: hold with sendonly/inactive,
        unhold, a new address or key) and returns the matching answer; the leg stays up."""

    async def offer(self) -> str:
        """Return an SDP offer for a call we place."""

    async def accept_answer(self, remote_answer: str) -> None:
        """Apply the peer's SDP answer to our offer. Connectivity starts at once."""

    async def play(self, source: AudioSource, *, loop_count: int = 1, playback_id: str) -> None:
        """Start playing to the peer (replacing any playback); `PlaybackFinished` reports the end.

        At most the engine's prompt limit of a file is played (`[media] max_prompt_seconds`); a longer file
        plays its beginning. `UnplayableAudio` when the content is not audio."""

    async def stop_play(self) -> None: ...

    async def send_dtmf(self, digits: str, *, duration_ms: int = 100, gap_ms: int = 60) -> None:
        """Send the keys (RFC 4733 or in-band, per the leg's `dtmf`; in-band also when the peer did not
        negotiate telephone-event); returns when the last was sent. `w` and `W` pause 0.5 s and 1 s;
        `InvalidDtmf` unless `check_dtmf` passes."""

    async def start_recording(self, target: MediaLocator, *, fmt: RecordingFormat, recording_id: str) -> None:
        """Record what the peer sends (and, bridged, what it hears) to `target`."""

    async def stop_recording(self) -> None:
        """Finish the file; `RecordingFinished` reports it."""

    def enable_inband_dtmf(self, enabled: bool) -> None:
        """Decode the peer's audio to find in-band DTMF tones (costly: only while a capture runs)."""

    def set_sending(self, enabled: bool) -> None:
        """Hold (False) or release (True) our outbound audio; ICE, DTLS and RTCP go on (rtpengine:
        block/unblock media). Playback and DTMF wait while held. A new leg sends. WebRTC legs send no RTP
        while held; `rtp` legs send silence, so NAT bindings and far-end no-media timers hold."""

    def diagnostics(self) -> MediaDiagnostics:
        """The leg's last known diagnostics; never blocks on the engine (a remote engine returns what
        it last reported)."""

    async def close(self) -> None:
        """Stop all media of the leg; idempotent."""


class MediaMixer(Protocol):
    """A conference: every member hears the mix of the others."""

    @property
    def id(self) -> str: ...

    async def add(self, leg: MediaLeg) -> None:
        """Join `leg` (leaving any bridge or other mixer it was in)."""

    async def remove(self, leg: MediaLeg) -> None: ...

    async def close(self) -> None: ...


class MediaEngine(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def create_leg(self, leg_id: str, sink: MediaEventSink, spec: LegSpec) -> MediaLeg:
        """A new leg whose events go to `sink` (called on the event loop, must not block)."""

    async def bridge(self, a: MediaLeg, b: MediaLeg) -> None:
        """Send each leg's audio to the other: packets forwarded when both use the same codec,
        transcoded otherwise."""

    async def unbridge(self, a: MediaLeg, b: MediaLeg) -> None: ...

    async def create_mixer(self, mixer_id: str) -> MediaMixer:
        """A conference mix that legs join and leave."""
