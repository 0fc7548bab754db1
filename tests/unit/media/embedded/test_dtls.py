"""Two sans-I/O DTLS-SRTP sessions handshake in memory and protect RTP for each other."""

from __future__ import annotations

import time

from switchboard.media.embedded.dtls import DtlsContext, DtlsRole, DtlsSrtpSession, DtlsState
from switchboard.media.embedded.rtp import build_rtp
from switchboard.media.embedded.sdp import Fingerprint


def _pair(
    server_fp: Fingerprint | None = None,
) -> tuple[DtlsSrtpSession, DtlsSrtpSession]:
    a_ctx, b_ctx = DtlsContext(), DtlsContext()
    client = DtlsSrtpSession(a_ctx, DtlsRole.CLIENT, [b_ctx.fingerprint])
    server = DtlsSrtpSession(b_ctx, DtlsRole.SERVER, [server_fp or a_ctx.fingerprint])
    return client, server


def _run(client: DtlsSrtpSession, server: DtlsSrtpSession, drop_first: bool = False) -> None:
    now = time.monotonic()
    to_server = client.start(now)
    if drop_first:
        to_server = []
    to_client: list[bytes] = []
    for _ in range(50):
        if not to_server and not to_client:
            # OpenSSL keeps its own clock: wait for its retransmission timer for real (~1 s).
            time.sleep(max(0.0, (client.next_timeout or now) - time.monotonic()) + 0.05)
            now = time.monotonic()
            to_server = client.handle_timeout(now)
            to_client = server.handle_timeout(now)
        next_to_client: list[bytes] = []
        next_to_server: list[bytes] = []
        for datagram in to_server:
            out, _ = server.receive(datagram, now)
            next_to_client += out
        for datagram in to_client:
            out, _ = client.receive(datagram, now)
            next_to_server += out
        to_server, to_client = next_to_server, next_to_client
        connected = client.state is DtlsState.CONNECTED and server.state is DtlsState.CONNECTED
        if connected and not to_server and not to_client:
            return
        if DtlsState.FAILED in (client.state, server.state):
            return


def test_handshake_and_srtp_both_ways() -> None:
    client, server = _pair()
    _run(client, server)
    assert client.state is DtlsState.CONNECTED
    assert server.state is DtlsState.CONNECTED
    packet = build_rtp(payload_type=111, sequence=1, timestamp=960, ssrc=1234, payload=b"abc", marker=False)
    assert server.rx_srtp.unprotect(client.tx_srtp.protect(packet)) == packet
    assert client.rx_srtp.unprotect(server.tx_srtp.protect(packet)) == packet


def test_lost_client_hello_is_retransmitted_on_timeout() -> None:
    client, server = _pair()
    _run(client, server, drop_first=True)
    assert client.state is DtlsState.CONNECTED
    assert server.state is DtlsState.CONNECTED


def test_fingerprint_mismatch_fails_with_reason() -> None:
    client, server = _pair(server_fp=Fingerprint("sha-256", "AA:" * 31 + "AA"))
    _run(client, server)
    assert server.state is DtlsState.FAILED
    assert server.failure is not None and "fingerprint" in server.failure
