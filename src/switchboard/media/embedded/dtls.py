"""Sans-I/O DTLS-SRTP (RFC 5764, RFC 8842) over pyOpenSSL memory BIOs.

Datagrams go in with `receive`, datagrams to send come out as lists; the owner drives handshake
retransmission by calling `handle_timeout(now)` once `now >= next_timeout`. When the handshake completes
and the peer certificate matches the SDP fingerprint, `tx_srtp` / `rx_srtp` are ready.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Sequence
from typing import Any

import pylibsrtp
from aiortc.rtcdtlstransport import (
    SRTP_PROFILES,
    RTCCertificate,
    certificate_digest,
)
from OpenSSL import SSL

from switchboard.media.embedded.sdp import Fingerprint

_SUPPORTED_DIGESTS = ("sha-256", "sha-384", "sha-512")
_MAX_DATAGRAM = 1500


class DtlsRole(enum.StrEnum):
    CLIENT = "client"
    SERVER = "server"


class DtlsState(enum.StrEnum):
    NEW = "new"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    CLOSED = "closed"
    FAILED = "failed"


class DtlsContext:
    """One certificate and one OpenSSL context shared by every session of an engine."""

    def __init__(self, certificate: RTCCertificate | None = None) -> None:
        self.certificate = certificate or RTCCertificate.generateCertificate()
        self._ssl_context = self.certificate._create_ssl_context(srtp_profiles=SRTP_PROFILES)

    @property
    def fingerprint(self) -> Fingerprint:
        for fingerprint in self.certificate.getFingerprints():
            if fingerprint.algorithm == "sha-256":
                return Fingerprint("sha-256", fingerprint.value.upper())
        raise RuntimeError("aiortc certificate has no sha-256 fingerprint")

    def new_connection(self) -> Any:
        return SSL.Connection(self._ssl_context)


class DtlsSrtpSession:
    """One DTLS association; time is an argument (seconds, any monotonic clock)."""

    def __init__(
        self, context: DtlsContext, role: DtlsRole, remote_fingerprints: Sequence[Fingerprint]
    ) -> None:
        self.role = role
        self.state = DtlsState.NEW
        self.failure: str | None = None
        self.tx_srtp: Any = None
        self.rx_srtp: Any = None
        self.srtp_profile: str | None = None
        self.next_timeout: float | None = None
        self._remote_fingerprints = list(remote_fingerprints)
        self._ssl = context.new_connection()
        if role is DtlsRole.SERVER:
            self._ssl.set_accept_state()
        else:
            self._ssl.set_connect_state()

    # inputs

    def start(self, now: float) -> list[bytes]:
        """Begin the handshake (a client sends its ClientHello; a server waits)."""
        if self.state is not DtlsState.NEW:
            return []
        self.state = DtlsState.CONNECTING
        return self._handshake(now)

    def receive(self, data: bytes, now: float) -> tuple[list[bytes], bytes | None]:
        """Feed one DTLS datagram; returns (datagrams to send, application data or None)."""
        if self.state in (DtlsState.CLOSED, DtlsState.FAILED):
            return [], None
        if self.state is DtlsState.NEW:
            self.state = DtlsState.CONNECTING
        self._ssl.bio_write(data)
        if self.state is DtlsState.CONNECTING:
            return self._handshake(now), None
        try:
            app_data = self._ssl.recv(_MAX_DATAGRAM)
        except SSL.ZeroReturnError:
            self.state = DtlsState.CLOSED
            return self._drain(), None
        except SSL.Error:
            app_data = b""
        self._update_timer(now)
        return self._drain(), app_data or None

    def handle_timeout(self, now: float) -> list[bytes]:
        """Retransmit the last flight if OpenSSL's timer ran out."""
        if self.next_timeout is None or now < self.next_timeout:
            return []
        try:
            self._ssl.DTLSv1_handle_timeout()
        except SSL.Error as exc:
            self._fail(f"DTLS handshake failed: {exc}")
        self._update_timer(now)
        return self._drain()

    def close(self) -> list[bytes]:
        """Send close_notify if the association is up."""
        if self.state in (DtlsState.CONNECTING, DtlsState.CONNECTED):
            with contextlib.suppress(SSL.Error):
                self._ssl.shutdown()
            out = self._drain()
        else:
            out = []
        if self.state is not DtlsState.FAILED:
            self.state = DtlsState.CLOSED
        self.next_timeout = None
        return out

    # internals

    def _handshake(self, now: float) -> list[bytes]:
        try:
            self._ssl.do_handshake()
        except SSL.WantReadError:
            self._update_timer(now)
            return self._drain()
        except SSL.Error as exc:
            out = self._drain()
            self._fail(f"DTLS handshake failed: {exc}")
            return out
        out = self._drain()
        self._complete()
        self._update_timer(now)
        return out

    def _complete(self) -> None:
        certificate = self._ssl.get_peer_certificate(as_cryptography=True)
        if certificate is None:
            self._fail("DTLS handshake failed: the peer sent no certificate")
            return
        checked = 0
        for fingerprint in self._remote_fingerprints:
            if fingerprint.algorithm not in _SUPPORTED_DIGESTS:
                continue
            checked += 1
            if certificate_digest(certificate, fingerprint.algorithm) != fingerprint.value.upper():
                self._fail(
                    "DTLS failed: the peer's certificate does not match the SDP fingerprint "
                    f"({fingerprint.algorithm})"
                )
                return
        if not checked:
            self._fail("DTLS failed: the SDP has no fingerprint with a supported hash")
            return
        selected = self._ssl.get_selected_srtp_profile()
        for profile in SRTP_PROFILES:
            if profile.openssl_profile == selected:
                break
        else:
            self._fail("DTLS failed: no SRTP protection profile was negotiated")
            return
        material = self._ssl.export_keying_material(
            b"EXTRACTOR-dtls_srtp", 2 * (profile.key_length + profile.salt_length)
        )
        client_key = profile.get_key_and_salt(material, 0)
        server_key = profile.get_key_and_salt(material, 1)
        tx_key, rx_key = (
            (client_key, server_key) if self.role is DtlsRole.CLIENT else (server_key, client_key)
        )
        self.rx_srtp = pylibsrtp.Session(
            _policy(rx_key, pylibsrtp.Policy.SSRC_ANY_INBOUND, profile.libsrtp_profile)
        )
        self.tx_srtp = pylibsrtp.Session(
            _policy(tx_key, pylibsrtp.Policy.SSRC_ANY_OUTBOUND, profile.libsrtp_profile)
        )
        self.srtp_profile = profile.openssl_profile.decode()
        self.state = DtlsState.CONNECTED

    def _update_timer(self, now: float) -> None:
        timeout = self._ssl.DTLSv1_get_timeout()
        self.next_timeout = None if timeout is None else now + timeout

    def _drain(self) -> list[bytes]:
        out: list[bytes] = []
        while True:
            try:
                data = self._ssl.bio_read(_MAX_DATAGRAM)
            except SSL.Error:
                break
            if not data:
                break
            out.append(data)
        return out

    def _fail(self, reason: str) -> None:
        self.state = DtlsState.FAILED
        self.failure = reason
        self.next_timeout = None


def _policy(key: bytes, ssrc_type: int, profile: int) -> Any:
    policy = pylibsrtp.Policy(key=key, ssrc_type=ssrc_type, srtp_profile=profile)
    policy.allow_repeat_tx = True
    policy.window_size = 1024
    return policy
