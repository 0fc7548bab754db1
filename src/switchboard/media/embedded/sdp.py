"""Sans-I/O SDP for one audio stream (RFC 8866, RFC 3264 offer/answer, RFC 8839 ICE, RFC 8842 DTLS,
RFC 4568 SDES).

`parse_audio_description` reads an offer or answer into an `AudioDescription` (the first audio m-line with
one of the codecs asked for); `build_description` writes ours for the WebRTC profiles and
`build_rtp_description` for plain RTP or SDES-SRTP. Lines end in CRLF. Anything we do not need is ignored,
never guessed; other m-lines are kept only so that an answer can refuse them in place (port 0).
"""

from __future__ import annotations

import base64
import binascii
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

from switchboard.errors import MediaError
from switchboard.media.codecs import AudioFormat
from switchboard.media.types import Codec


class SdpError(MediaError):
    """The peer's SDP cannot carry a call (no audio, no common codec, no ICE credentials, ...)."""


class DtlsSetup(enum.StrEnum):
    """RFC 4145 / RFC 8842 `a=setup` values."""

    ACTIVE = "active"
    PASSIVE = "passive"
    ACTPASS = "actpass"
    HOLDCONN = "holdconn"


class Direction(enum.StrEnum):
    """RFC 3264 §5.1 / §6.1 media direction attributes."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    @property
    def sends(self) -> bool:
        return self in (Direction.SENDRECV, Direction.SENDONLY)

    @property
    def receives(self) -> bool:
        return self in (Direction.SENDRECV, Direction.RECVONLY)

    def answer(self) -> Direction:
        """Our direction in an answer to this one, when we would send and receive (RFC 3264 §6.1)."""
        return {
            Direction.SENDRECV: Direction.SENDRECV,
            Direction.SENDONLY: Direction.RECVONLY,
            Direction.RECVONLY: Direction.SENDONLY,
            Direction.INACTIVE: Direction.INACTIVE,
        }[self]


@dataclass(frozen=True, slots=True)
class Fingerprint:
    algorithm: str
    """Lower case, e.g. "sha-256"."""
    value: str
    """Upper-case hex pairs separated by colons."""


SRTP_SUITES = ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")
"""RFC 4568 §6.2 crypto-suites we take, in our order of preference."""


@dataclass(frozen=True, slots=True)
class CryptoAttribute:
    """One RFC 4568 `a=crypto:<tag> <suite> inline:<key||salt>` line (no MKI, default lifetime)."""

    tag: int
    suite: str
    key_salt: bytes
    """30 bytes: the 128-bit master key followed by the 112-bit master salt (§6.2)."""

    def to_sdp(self) -> str:
        return f"{self.tag} {self.suite} inline:{base64.b64encode(self.key_salt).decode()}"

    @classmethod
    def parse(cls, value: str) -> CryptoAttribute | None:
        """The attribute if we can use it: a suite of `SRTP_SUITES`, one inline key, no MKI."""
        parts = value.split()
        if len(parts) < 3 or not parts[0].isdigit() or parts[1] not in SRTP_SUITES:
            return None
        key_params = parts[2]
        if not key_params.startswith("inline:") or ";" in key_params:
            return None  # several keys (§9.2) are not supported
        inline = key_params[len("inline:") :].split("|")
        if len(inline) > 2 or (len(inline) == 2 and ":" in inline[1]):
            return None  # an MKI (§6.1) we would have to put in every packet
        if len(inline) == 2 and not inline[1].startswith("2^") and not inline[1].isdigit():
            return None
        try:
            key_salt = base64.b64decode(inline[0] + "=" * (-len(inline[0]) % 4), validate=True)
        except (binascii.Error, ValueError):
            return None
        if len(key_salt) != 30:
            return None
        return cls(int(parts[0]), parts[1], key_salt)


@dataclass(frozen=True, slots=True)
class MediaLine:
    """An m-line as an answer has to echo it when refusing it (RFC 3264 §6)."""

    media: str
    proto: str
    first_format: str
    mid: str | None

    def refused(self) -> list[str]:
        lines = [f"m={self.media} 0 {self.proto} {self.first_format}"]
        if self.mid is not None:
            lines.append(f"a=mid:{self.mid}")
        return lines


@dataclass(frozen=True, slots=True)
class AudioDescription:
    """What one side said about its single audio stream."""

    ice_ufrag: str
    ice_pwd: str
    ice_lite: bool
    fingerprints: tuple[Fingerprint, ...]
    setup: DtlsSetup
    opus_pt: int | None
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
    proto: str = "UDP/TLS/RTP/SAVPF"
    formats: tuple[AudioFormat, ...] = ()
    """The audio codecs we know, in the order of the m-line (the sender's preference)."""
    direction: Direction = Direction.SENDRECV
    crypto: tuple[CryptoAttribute, ...] = ()
    rtcp_port: int | None = None
    """`a=rtcp` (RFC 3605); RTP port + 1 when absent and without rtcp-mux."""
    index: int = 0
    """Position of this m-line among `media_lines`."""
    media_lines: tuple[MediaLine, ...] = ()

    def format_for(self, codecs: Sequence[Codec]) -> AudioFormat | None:
        """The first of `codecs` (our preference) that this side also listed."""
        for codec in codecs:
            for fmt in self.formats:
                if fmt.codec is codec:
                    return fmt
        return None

    @property
    def on_hold_address(self) -> bool:
        """RFC 3264 §8.4: c=0.0.0.0 is the old way of putting a stream on hold."""
        return self.connection_address == "0.0.0.0"


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


_CODEC_NAMES = {"opus": Codec.OPUS, "pcmu": Codec.PCMU, "pcma": Codec.PCMA}
_DISPLAY = {Codec.OPUS: "Opus", Codec.PCMU: "PCMU", Codec.PCMA: "PCMA"}


def _audio_formats(section: _Section) -> tuple[list[AudioFormat], int | None]:
    rtpmaps: dict[str, str] = {}
    for rtpmap in section.all("rtpmap"):
        pt_text, _, encoding = rtpmap.partition(" ")
        rtpmaps[pt_text] = encoding.strip()
    formats: list[AudioFormat] = []
    telephone_event_pt = None
    for pt_text in section.formats:
        if not pt_text.isdigit():
            continue
        pt = int(pt_text)
        mapped = rtpmaps.get(pt_text)
        if mapped is None:
            # RFC 3551 static types may come without an rtpmap.
            if pt in (0, 8):
                formats.append(AudioFormat(Codec.PCMU if pt == 0 else Codec.PCMA, pt))
            continue
        name = mapped.split("/")
        codec = _CODEC_NAMES.get(name[0].lower())
        rate = name[1] if len(name) > 1 else ""
        if codec is not None and rate == ("48000" if codec is Codec.OPUS else "8000"):
            formats.append(AudioFormat(codec, pt))
        elif name[0].lower() == "telephone-event" and rate == "8000" and telephone_event_pt is None:
            telephone_event_pt = pt
    return formats, telephone_event_pt


def parse_audio_description(
    text: str,
    *,
    what: str = "offer",
    codecs: Sequence[Codec] = (Codec.OPUS,),
    webrtc: bool = True,
) -> AudioDescription:
    """Parse the audio part of an SDP `what` ("offer" or "answer"): the first audio m-line that lists one
    of `codecs`. `webrtc` requires DTLS-SRTP and ICE; otherwise RTP/AVP or RTP/SAVP with an address.
    Raise `SdpError` with a clear reason."""
    if not text or not text.lstrip().startswith("v=0"):
        raise SdpError(f"SDP {what} is not an SDP document (it must start with v=0)")
    session, media = _sections(text)
    audio = None
    index = 0
    formats: list[AudioFormat] = []
    telephone_event_pt = None
    wanted = [c for c in codecs if c is not Codec.TELEPHONE_EVENT]
    for position, section in enumerate(media):
        if section.media != "audio" or section.port == 0:
            continue
        found, event_pt = _audio_formats(section)
        if any(fmt.codec in wanted for fmt in found):
            audio, index, formats, telephone_event_pt = section, position, found, event_pt
            break
    if audio is None:
        names = " or ".join(_DISPLAY[c] for c in wanted)
        raise SdpError(f"SDP {what} has no audio m-line with {names}")

    def attr(name: str) -> str | None:
        value = audio.first(name)
        return value if value is not None else session.first(name)

    proto = audio.proto.upper()
    ufrag, pwd = attr("ice-ufrag") or "", attr("ice-pwd") or ""
    fingerprints = []
    for value in audio.all("fingerprint") or session.all("fingerprint"):
        algorithm, _, digest = value.partition(" ")
        if digest:
            fingerprints.append(Fingerprint(algorithm.lower(), digest.strip().upper()))
    if webrtc:
        if "SAVPF" not in proto and "SAVP" not in proto:
            raise SdpError(f"SDP {what} audio m-line uses {audio.proto}, not UDP/TLS/RTP/SAVPF")
        if not ufrag or not pwd:
            raise SdpError(f"SDP {what} has no ICE credentials (a=ice-ufrag / a=ice-pwd)")
        if not fingerprints:
            raise SdpError(f"SDP {what} has no DTLS fingerprint (a=fingerprint)")
    elif proto not in ("RTP/AVP", "RTP/SAVP", "RTP/AVPF", "RTP/SAVPF"):
        raise SdpError(f"SDP {what} audio m-line uses {audio.proto}, not RTP/AVP or RTP/SAVP")
    setup_text = (attr("setup") or "actpass").lower()
    try:
        setup = DtlsSetup(setup_text)
    except ValueError as exc:
        raise SdpError(f"SDP {what} has an unknown a=setup:{setup_text}") from exc

    opus_pt = next((fmt.payload_type for fmt in formats if fmt.codec is Codec.OPUS), None)
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
    direction = Direction.SENDRECV
    for candidate in Direction:
        if audio.has(candidate.value) or (
            not any(audio.has(d.value) for d in Direction) and session.has(candidate.value)
        ):
            direction = candidate
            break
    crypto = tuple(c for c in (CryptoAttribute.parse(v) for v in audio.all("crypto")) if c is not None)
    rtcp_port = None
    rtcp_text = audio.first("rtcp")
    if rtcp_text:
        port_text = rtcp_text.split()[0]
        rtcp_port = int(port_text) if port_text.isdigit() else None
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
        proto=audio.proto,
        formats=tuple(formats),
        direction=direction,
        crypto=crypto,
        rtcp_port=rtcp_port,
        index=index,
        media_lines=tuple(
            MediaLine(s.media or "", s.proto, s.formats[0] if s.formats else "0", s.first("mid"))
            for s in media
        ),
    )


def _codec_lines(audio: Sequence[AudioFormat], telephone_event_pt: int | None, opus_fmtp: str) -> list[str]:
    lines = []
    for fmt in audio:
        lines.append(f"a=rtpmap:{fmt.rtpmap}")
        if fmt.codec is Codec.OPUS:
            lines.append(f"a=fmtp:{fmt.payload_type} {opus_fmtp}")
    if telephone_event_pt is not None:
        lines += [
            f"a=rtpmap:{telephone_event_pt} telephone-event/8000",
            f"a=fmtp:{telephone_event_pt} 0-16",
        ]
    return lines


def _formats_field(audio: Sequence[AudioFormat], telephone_event_pt: int | None) -> str:
    pts = [str(fmt.payload_type) for fmt in audio]
    if telephone_event_pt is not None:
        pts.append(str(telephone_event_pt))
    return " ".join(pts)


def _wrap(header: list[str], audio_block: list[str], refused: Sequence[MediaLine], index: int) -> str:
    lines = list(header)
    for position, line in enumerate(refused):
        if position == index:
            lines += audio_block
        else:
            lines += line.refused()
    if not refused:
        lines += audio_block
    return "\r\n".join(lines) + "\r\n"


def build_description(
    *,
    session_id: int,
    address: str,
    port: int,
    ice_ufrag: str,
    ice_pwd: str,
    fingerprint: Fingerprint,
    setup: DtlsSetup,
    opus_pt: int | None = None,
    telephone_event_pt: int | None,
    candidates: list[str],
    ssrc: int,
    cname: str,
    mid: str | None = None,
    opus_fmtp: str = "minptime=10;useinbandfec=1",
    audio: Sequence[AudioFormat] = (),
    direction: Direction = Direction.SENDRECV,
    media_lines: Sequence[MediaLine] = (),
    index: int = 0,
) -> str:
    """Our offer or answer for one audio stream over ICE + DTLS-SRTP: full ICE, no trickle (candidates
    are all in here). `audio` lists the codecs (default: Opus on `opus_pt`); an answer passes the offer's
    `media_lines` and the audio's `index` so that the other m-lines are refused in place."""
    formats = list(audio) or [AudioFormat(Codec.OPUS, opus_pt if opus_pt is not None else 111)]
    header = ["v=0", f"o=- {session_id} 2 IN IP4 {address}", "s=-", "t=0 0"]
    if mid is not None:
        header.append(f"a=group:BUNDLE {mid}")
    block = [
        f"m=audio {port} UDP/TLS/RTP/SAVPF {_formats_field(formats, telephone_event_pt)}",
        f"c=IN IP4 {address}",
    ]
    if mid is not None:
        block.append(f"a=mid:{mid}")
    block += [
        f"a={direction.value}",
        "a=rtcp-mux",
        f"a=ice-ufrag:{ice_ufrag}",
        f"a=ice-pwd:{ice_pwd}",
        f"a=fingerprint:{fingerprint.algorithm} {fingerprint.value}",
        f"a=setup:{setup.value}",
    ]
    block += _codec_lines(formats, telephone_event_pt, opus_fmtp)
    block += ["a=ptime:20", f"a=ssrc:{ssrc} cname:{cname}"]
    block += [f"a=candidate:{candidate}" for candidate in candidates]
    block.append("a=end-of-candidates")
    return _wrap(header, block, media_lines, index)


def build_rtp_description(
    *,
    session_id: int,
    version: int,
    address: str,
    port: int,
    audio: Sequence[AudioFormat],
    telephone_event_pt: int | None,
    direction: Direction = Direction.SENDRECV,
    crypto: Sequence[CryptoAttribute] = (),
    rtcp_mux: bool = False,
    media_lines: Sequence[MediaLine] = (),
    index: int = 0,
    opus_fmtp: str = "minptime=10;useinbandfec=1",
) -> str:
    """Our offer or answer for plain RTP (RTP/AVP) or SDES-SRTP (RTP/SAVP, when `crypto` is given), as a
    SIP peer expects it: c= line, static payload types, `a=ptime:20`, RTCP on port + 1 unless muxed."""
    proto = "RTP/SAVP" if crypto else "RTP/AVP"
    family = "IP6" if ":" in address else "IP4"
    header = [
        "v=0",
        f"o=- {session_id} {version} IN {family} {address}",
        "s=-",
        f"c=IN {family} {address}",
        "t=0 0",
    ]
    block = [f"m=audio {port} {proto} {_formats_field(audio, telephone_event_pt)}"]
    block += _codec_lines(audio, telephone_event_pt, opus_fmtp)
    block += ["a=ptime:20", f"a={direction.value}"]
    if rtcp_mux:
        block.append("a=rtcp-mux")
    else:
        block.append(f"a=rtcp:{port + 1}")
    block += [f"a=crypto:{attribute.to_sdp()}" for attribute in crypto]
    return _wrap(header, block, media_lines, index)
