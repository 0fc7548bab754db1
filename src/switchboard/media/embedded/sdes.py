"""SDES-SRTP (RFC 4568): our keys for `a=crypto` lines and the libsrtp sessions they key."""

from __future__ import annotations

import secrets
from typing import Any

import pylibsrtp

from switchboard.media.embedded.sdp import SRTP_SUITES, CryptoAttribute

_PROFILES = {
    "AES_CM_128_HMAC_SHA1_80": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    # libsrtp keeps the 80-bit tag for SRTCP with this profile, as RFC 4568 §6.2.1 requires.
    "AES_CM_128_HMAC_SHA1_32": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
}


def new_crypto(tag: int, suite: str) -> CryptoAttribute:
    """A fresh master key and salt for `suite` (RFC 4568 §6.1: one per direction, never reused)."""
    return CryptoAttribute(tag, suite, secrets.token_bytes(30))


def offer_crypto() -> tuple[CryptoAttribute, ...]:
    return tuple(new_crypto(tag, suite) for tag, suite in enumerate(SRTP_SUITES, start=1))


def srtp_session(crypto: CryptoAttribute, *, outbound: bool) -> Any:
    """A libsrtp session protecting (outbound) or unprotecting what `crypto` keys."""
    policy = pylibsrtp.Policy(
        key=crypto.key_salt,
        ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND if outbound else pylibsrtp.Policy.SSRC_ANY_INBOUND,
        srtp_profile=_PROFILES[crypto.suite],
    )
    policy.allow_repeat_tx = True
    policy.window_size = 1024
    return pylibsrtp.Session(policy)
