"""Sans-I/O SDP for exactly what a WhatsApp audio leg needs (RFC 8866, RFC 8839 ICE, RFC 8842 DTLS).

`parse_audio_description` reads an offer or answer into an `AudioDescription` (the first audio m-line with
Opus); `build_description` writes ours. Lines end in CRLF. Anything we do not need is ignored, never guessed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from switchboard.errors import MediaError


class SdpError(MediaError):
    """The peer's SDP cannot carry a call (no audio, no Opus, no ICE credentials, ...)."""


class DtlsSetup(enum.StrEnum):
    """RFC 4145 / RFC 8842 `a=setup` values."""

    ACTIVE = "active"
    PASSIVE = "passive"
    ACTPASS = "actpass"
    HOLDCONN = "holdconn"


@dataclass(frozen=True, slots=True)
class Fingerprint:
    algorithm: str
    """Lower case, e.g. "sha-256"."""
    value: str
    """Upper-case hex pairs separated by colons."""


@dataclass(frozen=True, slots=True)
class AudioDescription:
    """What one side said about its single audio stream."""

    ice_ufrag: str
    ice_pwd: str
    ice_lite: bool
    fingerprints: tuple[Fingerprint, ...]
    setup: DtlsSetup
    opus_pt: int
    telephone_event_pt: int | None
    candidates: tuple[str, ...]
    """`a=candidate:` values after the colon, as aioice's `Candidate.from_sdp` reads them."""
    connection_address: str | None
    port: int
    mid: str | None = None
    rtcp_mux: bool = True
    opus_fmtp: str | None = None
    ptime: int | None = None
    ssrc: int | None = None


@dataclass(slots=True)
class _Section:
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    media: str | None = None
    port: int = 0
    proto: str = ""
    formats: list[str] = field(default_factory=list)
    connection: str | None = None

    def first(self, name: str) -> str | None:
        for key, value in self.attributes:
            if key == name:
                return value if value is not None else ""
        return None

    def all(self, name: str) -> list[str]:
        return [value or "" for key, value in self.attributes if key == name]

    def has(self, name: str) -> bool:
        return any(key == name for key, _ in self.attributes)


def _sections(text: str) -> tuple[_Section, list[_Section]]:
    session = _Section()
    media: list[_Section] = []
    current = session
    for raw in text.splitlines():
        line = raw.strip()
        if len(line) < 2 or line[1] != "=":
            continue
        kind, value = line[0], line[2:]
        if kind == "m":
            parts = value.split()
            if len(parts) < 3:
                raise SdpError(f"SDP has a malformed m-line: {line!r}")
            current = _Section(media=parts[0], proto=parts[2], formats=parts[3:])
            try:
                current.port = int(parts[1].split("/")[0])
            except ValueError as exc:
                raise SdpError(f"SDP m-line has a bad port: {line!r}") from exc
            media.append(current)
        elif kind == "c":
            parts = value.split()
            if len(parts) >= 3:
                current.connection = parts[2].split("/")[0]
        elif kind == "a":
            name, sep, attr_value = value.partition(":")
            current.attributes.append((name, attr_value if sep else None))
    return session, media


def parse_audio_description(text: str, *, what: str = "offer") -> AudioDescription:
    """Parse the audio part of an SDP `what` ("offer" or "answer"); raise `SdpError` with a clear reason."""
    if not text or not text.lstrip().startswith("v=0"):
        raise SdpError(f"SDP {what} is not an SDP document (it must start with v=0)")
    session, media = _sections(text)
    audio = None
    opus_pt = None
    for section in media:
        if section.media != "audio" or section.port == 0:
            continue
        for rtpmap in section.all("rtpmap"):
            pt_text, _, encoding = rtpmap.partition(" ")
            name = encoding.split("/")
            is_opus = name[0].lower() == "opus" and len(name) > 1 and name[1] == "48000"
            if is_opus and pt_text in section.formats:
                opus_pt = int(pt_text)
                break
        if opus_pt is not None:
            audio = section
            break
    if audio is None or opus_pt is None:
        raise SdpError(f"SDP {what} has no audio m-line with Opus")
    if "SAVPF" not in audio.proto and "SAVP" not in audio.proto:
        raise SdpError(f"SDP {what} audio m-line uses {audio.proto}, not UDP/TLS/RTP/SAVPF")

    def attr(name: str) -> str | None:
        value = audio.first(name)
        return value if value is not None else session.first(name)

    ufrag, pwd = attr("ice-ufrag"), attr("ice-pwd")
    if not ufrag or not pwd:
        raise SdpError(f"SDP {what} has no ICE credentials (a=ice-ufrag / a=ice-pwd)")
    fingerprints = []
    for value in audio.all("fingerprint") or session.all("fingerprint"):
        algorithm, _, digest = value.partition(" ")
        if digest:
            fingerprints.append(Fingerprint(algorithm.lower(), digest.strip().upper()))
    if not fingerprints:
        raise SdpError(f"SDP {what} has no DTLS fingerprint (a=fingerprint)")
    setup_text = (attr("setup") or "actpass").lower()
    try:
        setup = DtlsSetup(setup_text)
    except ValueError as exc:
        raise SdpError(f"SDP {what} has an unknown a=setup:{setup_text}") from exc

    telephone_event_pt = None
    for rtpmap in audio.all("rtpmap"):
        pt_text, _, encoding = rtpmap.partition(" ")
        if encoding.lower().startswith("telephone-event/8000") and pt_text in audio.formats:
            telephone_event_pt = int(pt_text)
            break
    opus_fmtp = None
    for fmtp in audio.all("fmtp"):
        pt_text, _, params = fmtp.partition(" ")
        if pt_text == str(opus_pt):
            opus_fmtp = params
    ptime_text = audio.first("ptime")
    ssrc = None
    for value in audio.all("ssrc"):
        try:
            ssrc = int(value.split()[0])
        except (ValueError, IndexError):
            continue
        break
    return AudioDescription(
        ice_ufrag=ufrag,
        ice_pwd=pwd,
        ice_lite=session.has("ice-lite") or audio.has("ice-lite"),
        fingerprints=tuple(fingerprints),
        setup=setup,
        opus_pt=opus_pt,
        telephone_event_pt=telephone_event_pt,
        candidates=tuple(audio.all("candidate") or session.all("candidate")),
        connection_address=audio.connection or session.connection,
        port=audio.port,
        mid=audio.first("mid"),
        rtcp_mux=audio.has("rtcp-mux"),
        opus_fmtp=opus_fmtp,
        ptime=int(ptime_text) if ptime_text and ptime_text.isdigit() else None,
        ssrc=ssrc,
    )


def build_description(
    *,
    session_id: int,
    address: str,
    port: int,
    ice_ufrag: str,
    ice_pwd: str,
    fingerprint: Fingerprint,
    setup: DtlsSetup,
    opus_pt: int,
    telephone_event_pt: int | None,
    candidates: list[str],
    ssrc: int,
    cname: str,
    mid: str | None = None,
    opus_fmtp: str = "minptime=10;useinbandfec=1",
) -> str:
    """Our offer or answer for one audio stream: full ICE, no trickle (candidates are all in here)."""
    formats = [str(opus_pt)] + ([str(telephone_event_pt)] if telephone_event_pt is not None else [])
    lines = [
        "v=0",
        f"o=- {session_id} 2 IN IP4 {address}",
        "s=-",
        "t=0 0",
    ]
    if mid is not None:
        lines.append(f"a=group:BUNDLE {mid}")
    lines += [
        f"m=audio {port} UDP/TLS/RTP/SAVPF {' '.join(formats)}",
        f"c=IN IP4 {address}",
    ]
    if mid is not None:
        lines.append(f"a=mid:{mid}")
    lines += [
        "a=sendrecv",
        "a=rtcp-mux",
        f"a=ice-ufrag:{ice_ufrag}",
        f"a=ice-pwd:{ice_pwd}",
        f"a=fingerprint:{fingerprint.algorithm} {fingerprint.value}",
        f"a=setup:{setup.value}",
        f"a=rtpmap:{opus_pt} opus/48000/2",
        f"a=fmtp:{opus_pt} {opus_fmtp}",
    ]
    if telephone_event_pt is not None:
        lines += [
            f"a=rtpmap:{telephone_event_pt} telephone-event/8000",
            f"a=fmtp:{telephone_event_pt} 0-16",
        ]
    lines += ["a=ptime:20", f"a=ssrc:{ssrc} cname:{cname}"]
    lines += [f"a=candidate:{candidate}" for candidate in candidates]
    lines.append("a=end-of-candidates")
    return "\r\n".join(lines) + "\r\n"
