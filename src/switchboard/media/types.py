"""Value types of the media port: what legs report, what they play and record, how they connect.

Everything above the media package speaks these types; none of them belongs to an engine.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from switchboard.errors import MediaError


class UnplayableAudio(MediaError):
    """The content is not audio the engine can decode (not an audio format, corrupt, no audio stream): the
    requester's content is at fault, so a 400. The message never names a directory of this node."""

    status_hint = 400


DTMF_DIGITS = "0123456789*#ABCD"
"""The keys `send_dtmf` sends (RFC 4733 §3.2 events 0-15; lower-case a-d are taken too)."""
DTMF_PAUSES = {"w": 500, "W": 1000}
"""Characters of a `send_dtmf` string that wait instead of pressing a key (ms), as Asterisk's SendDTMF."""
MAX_DTMF_DIGITS = 64
"""The longest `send_dtmf` string, keys and pauses: about ten seconds of keys, at most a minute of pauses."""


class InvalidDtmf(MediaError):
    """A `send_dtmf` string that is empty, too long or not keys; the message names the `dtmf` field."""

    status_hint = 400


def check_dtmf(digits: str) -> None:
    """Raise `InvalidDtmf` unless `digits` is 1 to `MAX_DTMF_DIGITS` keys (`DTMF_DIGITS`) and pauses."""
    if not digits:
        raise InvalidDtmf("dtmf: no keys to send")
    if len(digits) > MAX_DTMF_DIGITS:
        raise InvalidDtmf(f"dtmf: at most {MAX_DTMF_DIGITS} keys and pauses, not {len(digits)}")
    bad = sorted({c for c in digits if c.upper() not in DTMF_DIGITS and c not in DTMF_PAUSES})
    if bad:
        raise InvalidDtmf(
            f"dtmf: not DTMF keys: {''.join(bad)!r} (keys are 0-9, *, #, A-D; w and W pause 0.5 s and 1 s)"
        )


class TransportProfile(enum.StrEnum):
    """How a leg reaches its far end."""

    WEBRTC_CONTROLLING = "webrtc_controlling"
    """Meta's edge: we run full ICE as the controlling agent and are the DTLS client."""
    WEBRTC_CONTROLLED = "webrtc_controlled"
    """A browser: we answer its offer as the ICE controlled agent; DTLS role per its `a=setup`."""
    RTP = "rtp"
    """SIP: plain RTP (RTP/AVP) or SDES-SRTP (RTP/SAVP), no ICE, symmetric RTP with latching."""


class Codec(enum.StrEnum):
    """Codecs a far end may use (SDP encoding names)."""

    OPUS = "opus"
    PCMU = "PCMU"
    PCMA = "PCMA"
    TELEPHONE_EVENT = "telephone-event"


class SrtpPolicy(enum.StrEnum):
    """SRTP for the `rtp` profile (the WebRTC profiles always use DTLS-SRTP)."""

    NONE = "none"
    """Plain RTP (RTP/AVP)."""
    SDES = "sdes"
    """SDES-SRTP only (RTP/SAVP with `a=crypto`, RFC 4568)."""
    OPTIONAL = "optional"
    """Answer what the peer offers; offer plain RTP."""


class DtmfMode(enum.StrEnum):
    """How keys travel on a leg: RFC 4733 telephone-events, or tones in the audio."""

    RFC4733 = "RFC4733"
    INBAND = "INBAND"


@dataclass(frozen=True, slots=True)
class LegSpec:
    """What a channel asks of a new leg: the transport and the codecs its far end may use, in order of
    preference (telephone-event included when the far end takes RFC 4733 keys)."""

    profile: TransportProfile = TransportProfile.WEBRTC_CONTROLLING
    codecs: tuple[Codec, ...] = (Codec.OPUS, Codec.TELEPHONE_EVENT)
    srtp: SrtpPolicy = SrtpPolicy.NONE
    dtmf: DtmfMode = DtmfMode.RFC4733
    advertised_address: str | None = None
    """What this leg's SDP names as its address (c=, o=) instead of the engine's own: a channel's
    public address behind a 1:1 NAT. The leg still binds where the engine binds."""

    def __post_init__(self) -> None:
        if not any(c is not Codec.TELEPHONE_EVENT for c in self.codecs):
            raise ValueError("a leg needs at least one audio codec")


WHATSAPP_LEG = LegSpec()
"""Meta's edge: full ICE controlling, DTLS client, Opus with telephone-event/8000."""


class DtmfSource(enum.StrEnum):
    RFC4733 = "RFC4733"
    INBAND = "INBAND"
    SIGNALLING = "SIGNALLING"
    """Sent in the call's signalling (SIP INFO), not in the media."""


@dataclass(frozen=True, slots=True)
class MediaLocator:
    """Names audio content in a way every engine can resolve: `file:///abs/path` for content on this
    node's disk (the embedded engine reads it; a remote engine is handed the bytes)."""

    uri: str

    @classmethod
    def for_path(cls, path: Path) -> MediaLocator:
        return cls(path.resolve().as_uri())

    @property
    def path(self) -> Path:
        """The local file this locator names; `MediaError` if it names something else."""
        parsed = urlparse(self.uri)
        if parsed.scheme != "file":
            raise MediaError(f"{self.uri!r} is not a local file locator")
        return Path(unquote(parsed.path))


@dataclass(frozen=True, slots=True)
class Tone:
    frequency_hz: float
    duration_ms: int
    level_dbfs: float = -12.0


AudioSource = MediaLocator | Tone


class RecordingFormat(enum.StrEnum):
    WAV = "WAV"
    OGG = "OGG"


@dataclass(frozen=True, slots=True)
class MediaEvent:
    """Base of everything a leg reports. `leg_id` is the id the leg was created with (the call id)."""

    leg_id: str


@dataclass(frozen=True, slots=True)
class MediaStarted(MediaEvent):
    """The transport is up (ICE and DTLS completed, or the first RTP latched); media flows."""


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
    locator: MediaLocator
    duration_ms: int
    size: int


MediaEventSink = Callable[[MediaEvent], None]


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
