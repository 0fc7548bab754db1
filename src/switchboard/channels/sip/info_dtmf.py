"""Keys sent in SIP INFO requests (the signalling alternative to RFC 4733 events that many PBXs use).

Two bodies are in use: `application/dtmf-relay` (`Signal=5` and `Duration=160` lines, Cisco's format)
and `application/dtmf` (the key alone). Event codes 10 and 11 stand for `*` and `#` in either.
"""

from __future__ import annotations

from dataclasses import dataclass

DTMF_RELAY = "application/dtmf-relay"
DTMF = "application/dtmf"
DEFAULT_DURATION_MS = 250
_KEYS = frozenset("0123456789*#ABCD")
_CODES = {"10": "*", "11": "#", "12": "A", "13": "B", "14": "C", "15": "D"}
MAX_DURATION_MS = 60_000


@dataclass(frozen=True, slots=True)
class InfoKey:
    digit: str
    duration_ms: int


def _key(text: str) -> str | None:
    value = text.strip().upper()
    value = _CODES.get(value, value)
    return value if value in _KEYS and len(value) == 1 else None


def _duration(text: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        return DEFAULT_DURATION_MS
    return value if 0 < value <= MAX_DURATION_MS else DEFAULT_DURATION_MS


def parse_info_dtmf(content_type: str, body: bytes) -> InfoKey | None:
    """The key an INFO carries, or None when its body is not a DTMF body we know or names no key."""
    kind = content_type.split(";", 1)[0].strip().lower()
    text = body.decode("ascii", errors="replace")
    if kind == DTMF:
        digit = _key(text)
        return InfoKey(digit, DEFAULT_DURATION_MS) if digit is not None else None
    if kind != DTMF_RELAY:
        return None
    fields: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep:
            fields.setdefault(name.strip().lower(), value)
    digit = _key(fields.get("signal", ""))
    if digit is None:
        return None
    return InfoKey(digit, _duration(fields.get("duration", "")))
