"""The media engine interface: what the platform asks of a media engine, whatever it is built on.

The embedded engine (`media.embedded`) runs in-process; a driver for rtpengine's ng protocol fits the same
interface: `answer`/`offer`/`accept_answer` are SDP offer/answer rewriting, `play` is "play media",
`send_dtmf` is "play DTMF", `MediaEvent`s carry its DTMF events, `start_recording`/`stop_recording` map to
its recording commands and `bridge` joins two legs of one rtpengine call.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


class DtmfSource(enum.StrEnum):
    RFC4733 = "RFC4733"
    INBAND = "INBAND"


@dataclass(frozen=True, slots=True)
class MediaEvent:
    """Base of everything a leg reports. `leg_id` is the id the leg was created with (the call id)."""

    leg_id: str


@dataclass(frozen=True, slots=True)
class MediaStarted(MediaEvent):
    """ICE and DTLS completed; SRTP flows."""


@dataclass(frozen=True, slots=True)
class MediaFailed(MediaEvent):
    """The leg's media cannot go on; `reason` is for a person ("ICE failed: no candidate pair answered")."""

    reason: str


@dataclass(frozen=True, slots=True)
class MediaClosed(MediaEvent):
    """The peer ended the media session cleanly (DTLS close_notify); its signalling usually follows."""

    reason: str


@dataclass(frozen=True, slots=True)
class DtmfReceived(MediaEvent):
    digit: str
    duration_ms: int
    source: DtmfSource


@dataclass(frozen=True, slots=True)
class PlaybackFinished(MediaEvent):
    playback_id: str
    duration_ms: int
    completed: bool
    """False when stopped (stop_play, hangup, a new play) before the end."""


@dataclass(frozen=True, slots=True)
class RecordingFinished(MediaEvent):
    recording_id: str
    path: Path
    duration_ms: int
    size: int


MediaEventSink = Callable[[MediaEvent], None]


class RecordingFormat(enum.StrEnum):
    WAV = "WAV"
    OGG = "OGG"


@dataclass(frozen=True, slots=True)
class AudioFile:
    """A local audio file (WAV, or anything FFmpeg decodes)."""

    path: Path


@dataclass(frozen=True, slots=True)
class Tone:
    frequency_hz: float
    duration_ms: int
    level_dbfs: float = -12.0


AudioSource = AudioFile | Tone


@dataclass(slots=True)
class MediaDiagnostics:
    """What a person needs to tell why a call's audio did or did not flow."""

    ice_state: str = "new"
    dtls_state: str = "new"
    state_changes: list[tuple[str, str, float]] = field(default_factory=list)
    """(what, new state, unix time), e.g. ("ice", "completed", 1732540000.123)."""
    selected_pair: str | None = None
    packets_sent: int = 0
    packets_received: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    remote_fraction_lost: float | None = None
    """Fraction of our packets the peer reports lost (RTCP RR)."""
    remote_jitter_ms: float | None = None
    """Jitter of our stream as the peer reports it (RTCP RR)."""
    local_jitter_ms: float | None = None
    packets_lost: int | None = None
    """Packets we expected from the peer but did not get (from sequence numbers)."""
    codec: str | None = None
    failure: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "iceState": self.ice_state,
            "dtlsState": self.dtls_state,
            "stateChanges": [
                {"component": what, "state": state, "time": when} for what, state, when in self.state_changes
            ],
            "selectedCandidatePair": self.selected_pair,
            "packetsSent": self.packets_sent,
            "packetsReceived": self.packets_received,
            "bytesSent": self.bytes_sent,
            "bytesReceived": self.bytes_received,
            "packetsLost": self.packets_lost,
            "remoteFractionLost": self.remote_fraction_lost,
            "remoteJitterMs": self.remote_jitter_ms,
            "localJitterMs": self.local_jitter_ms,
            "codec": self.codec,
            "failure": self.failure,
        }


class MediaLeg(Protocol):
    """One call's media: one peer, one audio stream."""

    @property
    def id(self) -> str: ...

    async def answer(self, remote_offer: str) -> str:
        """Take the peer's SDP offer and return our SDP answer. Connectivity starts at once."""

    async def offer(self) -> str:
        """Return an SDP offer for a call we place."""

    async def accept_answer(self, remote_answer: str) -> None:
        """Apply the peer's SDP answer to our offer. Connectivity starts at once."""

    async def play(self, source: AudioSource, *, loop_count: int = 1, playback_id: str) -> None:
        """Start playing to the peer (replacing any playback); `PlaybackFinished` reports the end."""

    async def stop_play(self) -> None: ...

    async def send_dtmf(self, digits: str, *, duration_ms: int = 100, gap_ms: int = 60) -> None:
        """Send RFC 4733 telephone-events; returns when the last digit has been sent."""

    async def start_recording(self, path: Path, *, fmt: RecordingFormat, recording_id: str) -> None:
        """Record what the peer sends (and, bridged, what it hears) to `path`."""

    async def stop_recording(self) -> None:
        """Finish the file; `RecordingFinished` reports it."""

    def enable_inband_dtmf(self, enabled: bool) -> None:
        """Decode the peer's audio to find in-band DTMF tones (costly: only while a capture runs)."""

    def set_sending(self, enabled: bool) -> None:
        """Hold (False) or release (True) our outbound audio; ICE, DTLS and RTCP go on (rtpengine:
        block/unblock media). Playback and DTMF wait while held. A new leg sends."""

    def diagnostics(self) -> MediaDiagnostics: ...

    async def close(self) -> None:
        """Stop all media of the leg; idempotent."""


class MediaEngine(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def create_leg(self, leg_id: str, sink: MediaEventSink) -> MediaLeg:
        """A new leg whose events go to `sink` (called on the event loop, must not block)."""

    async def bridge(self, a: MediaLeg, b: MediaLeg) -> None:
        """Send each leg's audio to the other (no decoding when both speak the same codec)."""

    async def unbridge(self, a: MediaLeg, b: MediaLeg) -> None: ...
