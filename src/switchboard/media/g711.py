"""G.711 µ-law (PCMU) and A-law (PCMA), ITU-T G.711 §2-3, as numpy lookup tables.

Encoding indexes a 65536-entry table with the samples' bit patterns; decoding indexes a 256-entry table with
the payload bytes, so a 20 ms frame (160 samples at 8 kHz, RFC 3551 §4.5.14) costs a few microseconds.
The segment arithmetic follows the reference `g711.c` (Sun Microsystems, public domain) that most stacks use.
"""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt

Pcm = npt.NDArray[np.int16]

ULAW_SILENCE = 0xFF
"""µ-law code of zero (RFC 3551 §4.5.14: PCMU silence)."""
ALAW_SILENCE = 0xD5
"""A-law code nearest zero."""

_ULAW_BIAS = 0x84
_ULAW_BIAS_14 = 0x21
_ULAW_CLIP_14 = 8159


@functools.cache
def _ulaw_tables() -> tuple[npt.NDArray[np.uint8], Pcm]:
    x = np.arange(65536, dtype=np.int64)
    x = np.where(x >= 32768, x - 65536, x) >> 2  # the int16 value of each bit pattern, as 14 bits
    mask = np.where(x < 0, 0x7F, 0xFF)
    value = np.minimum(np.where(x < 0, _ULAW_BIAS_14 - x, x + _ULAW_BIAS_14), _ULAW_CLIP_14 + _ULAW_BIAS_14)
    ends = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
    segment = np.searchsorted(ends, value)
    code = np.where(
        segment >= 8, 0x7F, (np.minimum(segment, 7) << 4) | ((value >> (np.minimum(segment, 7) + 1)) & 0x0F)
    )
    encode = ((code ^ mask) & 0xFF).astype(np.uint8)
    u = ~np.arange(256, dtype=np.int64) & 0xFF
    t = (((u & 0x0F) << 3) + _ULAW_BIAS) << ((u & 0x70) >> 4)
    decode = np.where(u & 0x80, _ULAW_BIAS - t, t - _ULAW_BIAS).astype(np.int16)
    return encode, decode


@functools.cache
def _alaw_tables() -> tuple[npt.NDArray[np.uint8], Pcm]:
    x = np.arange(65536, dtype=np.int64)
    x = np.where(x >= 32768, x - 65536, x) >> 3  # 13-bit
    mask = np.where(x >= 0, 0xD5, 0x55)
    value = np.where(x >= 0, x, -x - 1)
    ends = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])
    segment = np.searchsorted(ends, value)  # first end >= value
    shifted = np.where(segment < 2, value >> 1, value >> np.maximum(segment, 1))
    code = np.where(segment >= 8, 0x7F, (np.minimum(segment, 7) << 4) | (shifted & 0x0F))
    encode = ((code ^ mask) & 0xFF).astype(np.uint8)
    a = np.arange(256, dtype=np.int64) ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    t = np.where(seg == 0, t + 8, (t + 0x108) << np.maximum(seg - 1, 0))
    decode = np.where(a & 0x80, t, -t).astype(np.int16)
    return encode, decode


def ulaw_encode(pcm: Pcm) -> bytes:
    return _ulaw_tables()[0][np.ascontiguousarray(pcm, dtype=np.int16).view(np.uint16)].tobytes()


def ulaw_decode(payload: bytes) -> Pcm:
    return _ulaw_tables()[1][np.frombuffer(payload, dtype=np.uint8)]


def alaw_encode(pcm: Pcm) -> bytes:
    return _alaw_tables()[0][np.ascontiguousarray(pcm, dtype=np.int16).view(np.uint16)].tobytes()


def alaw_decode(payload: bytes) -> Pcm:
    return _alaw_tables()[1][np.frombuffer(payload, dtype=np.uint8)]
