"""SDP rewriting that makes an aiortc description look like Meta's edge (reference §3).

Meta's offer: `a=ice-lite` in the session part, one audio m-line with Opus 48 kHz on PT 111
(`a=fmtp:111 minptime=10;useinbandfec=1`) and `telephone-event/8000` on PT 126, `a=setup:actpass`.
"""

from __future__ import annotations

import re

OPUS_PT = 111
TELEPHONE_EVENT_PT = 126
OPUS_FMTP = "minptime=10;useinbandfec=1"

_RTPMAP = re.compile(r"^a=rtpmap:(\d+) ([^/]+)/(\d+)")
_PT_ATTR = re.compile(r"^a=(?:rtpmap|fmtp|rtcp-fb):(\d+)[ ]")


def split_lines(sdp: str) -> list[str]:
    return [line for line in sdp.replace("\r\n", "\n").split("\n") if line]


def join_lines(lines: list[str]) -> str:
    return "\r\n".join(lines) + "\r\n"


def _with_ice_lite(lines: list[str]) -> list[str]:
    if "a=ice-lite" in lines:
        return lines
    index = next(i for i, line in enumerate(lines) if line.startswith("t="))
    return [*lines[: index + 1], "a=ice-lite", *lines[index + 1 :]]


def find_payload_type(sdp: str, encoding: str, clock_rate: int) -> int | None:
    """The payload type the first audio section maps to `encoding/clock_rate` (case-insensitive)."""
    for line in split_lines(sdp):
        match = _RTPMAP.match(line)
        if match and match.group(2).lower() == encoding.lower() and int(match.group(3)) == clock_rate:
            return int(match.group(1))
    return None


def meta_offer(sdp: str) -> str:
    """Rewrite aiortc's (or a browser's) audio offer into Meta's edge offer."""
    lines = _with_ice_lite(split_lines(sdp))
    opus = find_payload_type(sdp, "opus", 48000)
    if opus is None:
        raise ValueError("the offer has no Opus 48 kHz")
    out: list[str] = []
    for line in lines:
        if line.startswith("m=audio "):
            head = line.split(" ")[:3]
            out.append(" ".join([*head, str(OPUS_PT), str(TELEPHONE_EVENT_PT)]))
            continue
        attr = _PT_ATTR.match(line)
        if attr:
            pt = int(attr.group(1))
            if pt != opus:
                continue  # only Opus survives; telephone-event is re-added below
            if line.startswith("a=fmtp:"):
                continue
            rest = line.split(" ", 1)[1]
            kind = line[2 : line.index(":")]
            out.append(f"a={kind}:{OPUS_PT} {rest}")
            if kind == "rtpmap":
                out.append(f"a=fmtp:{OPUS_PT} {OPUS_FMTP}")
                out.append(f"a=rtpmap:{TELEPHONE_EVENT_PT} telephone-event/8000")
            continue
        if line.startswith("a=setup:"):
            out.append("a=setup:actpass")
            continue
        out.append(line)
    return join_lines(out)


def meta_answer(sdp: str, offer: str) -> str:
    """Rewrite aiortc's answer to a business offer: `a=ice-lite`, keep telephone-event/8000 if offered."""
    lines = _with_ice_lite(split_lines(sdp))
    dtmf = find_payload_type(offer, "telephone-event", 8000)
    if dtmf is None or find_payload_type(sdp, "telephone-event", 8000) is not None:
        return join_lines(lines)
    out: list[str] = []
    for line in lines:
        if line.startswith("m=audio "):
            line = f"{line} {dtmf}"
        out.append(line)
        if _RTPMAP.match(line) and "opus/48000" in line.lower():
            out.append(f"a=rtpmap:{dtmf} telephone-event/8000")
    return join_lines(out)


def _without_mdns(line: str, browser_address: str) -> str:
    """`a=candidate` with an mDNS host name (`<uuid>.local`) given `browser_address` instead."""
    fields = line.split(" ")
    if line.startswith("a=candidate:") and len(fields) > 5 and fields[4].lower().endswith(".local"):
        fields[4] = browser_address
    return " ".join(fields)


def browser_offer(sdp: str, browser_address: str | None = None) -> str:
    """A browser's offer as Meta would relay it: Opus + telephone-event/8000 only, PTs unchanged.

    Meta relays addresses, never mDNS names. A browser without microphone permission hides its host
    candidates behind `<uuid>.local` names (and listens on every address), so with `browser_address`
    (where the emulator saw the browser's request come from) each such name becomes that address.
    """
    keep = {
        pt
        for pt in (
            find_payload_type(sdp, "opus", 48000),
            find_payload_type(sdp, "telephone-event", 8000),
        )
        if pt is not None
    }
    out: list[str] = []
    for line in split_lines(sdp):
        if line.startswith("m=audio "):
            parts = line.split(" ")
            fmts = [f for f in parts[3:] if f.isdigit() and int(f) in keep]
            out.append(" ".join([*parts[:3], *fmts]))
            continue
        attr = _PT_ATTR.match(line)
        if attr and int(attr.group(1)) not in keep:
            continue
        out.append(line if browser_address is None else _without_mdns(line, browser_address))
    return join_lines(out)
