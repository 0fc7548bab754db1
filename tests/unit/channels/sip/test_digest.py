"""Digest authentication (RFC 7616, RFC 8760) as client and as server."""

from __future__ import annotations

import pytest

from switchboard.channels.sip.digest import (
    Authenticated,
    Challenge,
    Credentials,
    DigestServer,
    compute_response,
    digest_flow,
    parse_params,
    passwords,
)
from switchboard.channels.sip.message import Request, SipURI, make_response

PASSWORDS = passwords({"trunk1": "s3cret"}, "switchboard")


def register() -> Request:
    request = Request(method="REGISTER", uri=SipURI("127.0.0.1"))
    request.headers.add("Via", "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1")
    request.headers.add("From", "<sip:trunk1@127.0.0.1>;tag=a")
    request.headers.add("To", "<sip:trunk1@127.0.0.1>")
    request.headers.add("Call-ID", "r1")
    request.headers.add("CSeq", "1 REGISTER")
    request.headers.add("Contact", "<sip:trunk1@127.0.0.1:5070>")
    return request


def test_rfc_2617_example_response() -> None:
    # RFC 2617 §3.5, with HTTP's method and URI.
    assert (
        compute_response(
            algorithm="MD5",
            username="Mufasa",
            realm="testrealm@host.com",
            password="Circle Of Life",
            method="GET",
            uri="/dir/index.html",
            nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
            qop="auth",
            nc="00000001",
            cnonce="0a4f113b",
        )
        == "6629fae49393a05397450978507c4ef1"
    )


def test_challenge_parameters_parse_with_quotes_and_commas() -> None:
    scheme, params = parse_params(
        'Digest realm="a, b", nonce="n\\"1", qop="auth,auth-int", algorithm=SHA-256'
    )
    assert scheme == "digest"
    assert params == {"realm": "a, b", "nonce": 'n"1', "qop": "auth,auth-int", "algorithm": "SHA-256"}


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
def test_the_client_flow_answers_the_server_challenge(algorithm: str) -> None:
    server = DigestServer("switchboard", algorithms=(algorithm,))
    flow = digest_flow(register(), Credentials("trunk1", "s3cret"))
    first = next(flow)
    assert server.verify(first, PASSWORDS, 0.0) == Challenge()
    challenge = make_response(first, 401, to_tag="t", headers=server.challenge(0.0))
    second = flow.send(challenge)
    assert second.cseq.number == 2
    assert second.headers.get("Via") is None
    assert server.verify(second, PASSWORDS, 1.0) == Authenticated("trunk1")
    with pytest.raises(StopIteration):
        flow.send(make_response(second, 401, to_tag="t", headers=server.challenge(1.0)))


def test_a_wrong_password_or_a_forged_nonce_is_challenged_again() -> None:
    server = DigestServer("switchboard")
    flow = digest_flow(register(), Credentials("trunk1", "wrong"))
    first = next(flow)
    second = flow.send(make_response(first, 401, headers=server.challenge(0.0)))
    assert server.verify(second, PASSWORDS, 0.0) == Challenge()
    other = DigestServer("switchboard")
    flow = digest_flow(register(), Credentials("trunk1", "s3cret"))
    first = next(flow)
    second = flow.send(make_response(first, 401, headers=other.challenge(0.0)))
    assert server.verify(second, PASSWORDS, 0.0) == Challenge()


def test_an_expired_nonce_is_stale_and_the_client_retries_it() -> None:
    server = DigestServer("switchboard", nonce_lifetime=30.0)
    flow = digest_flow(register(), Credentials("trunk1", "s3cret"))
    first = next(flow)
    second = flow.send(make_response(first, 401, headers=server.challenge(0.0)))
    assert server.verify(second, PASSWORDS, 31.0) == Challenge(stale=True)
    third = flow.send(make_response(second, 401, headers=server.challenge(31.0, stale=True)))
    assert third.cseq.number == 3
    assert server.verify(third, PASSWORDS, 31.0) == Authenticated("trunk1")


def test_a_proxy_challenge_gets_proxy_authorization() -> None:
    server = DigestServer("switchboard")
    flow = digest_flow(register(), Credentials("trunk1", "s3cret"))
    first = next(flow)
    headers = [("Proxy-Authenticate", value) for _, value in server.challenge(0.0)]
    second = flow.send(make_response(first, 407, headers=headers))
    assert (second.headers.get("Proxy-Authorization") or "").startswith("Digest ")
    assert second.headers.get("Authorization") is None


def test_garbage_authorization_is_a_challenge_not_a_crash() -> None:
    server = DigestServer("switchboard")
    for value in ['Digest realm="switchboard", nonce="', "Digest", 'Digest realm="switchboard", nonce="@@"']:
        request = register()
        request.headers.add("Authorization", value)
        assert isinstance(server.verify(request, PASSWORDS, 0.0), Challenge)
