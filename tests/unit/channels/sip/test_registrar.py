"""The registrar (RFC 3261 §10.3)."""

from __future__ import annotations

from switchboard.channels.sip.message import Request, SipURI
from switchboard.channels.sip.registrar import Registrar

SOURCE = ("udp", "127.0.0.1", 5070)


def register(contact: str, cseq: int = 1, expires: str | None = None, call_id: str = "r1") -> Request:
    request = Request(method="REGISTER", uri=SipURI("127.0.0.1"))
    request.headers.add("Via", "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1")
    request.headers.add("From", "<sip:trunk1@127.0.0.1>;tag=a")
    request.headers.add("To", "<sip:trunk1@127.0.0.1>")
    request.headers.add("Call-ID", call_id)
    request.headers.add("CSeq", f"{cseq} REGISTER")
    request.headers.add("Contact", contact)
    if expires is not None:
        request.headers.add("Expires", expires)
    return request


def test_a_binding_lasts_until_it_expires() -> None:
    registrar = Registrar()
    outcome = registrar.register("trunk1", register("<sip:pbx@127.0.0.1:5070>", expires="120"), 0.0, SOURCE)
    assert outcome.status == 200
    assert outcome.headers == [("Contact", "<sip:pbx@127.0.0.1:5070>;expires=120")]
    binding = registrar.contact("trunk1", 100.0)
    assert binding is not None and binding.contact.uri == SipURI("127.0.0.1", "pbx", 5070)
    assert binding.source == SOURCE
    assert registrar.contact("trunk1", 120.0) is None
    assert registrar.contact("other", 0.0) is None


def test_refresh_unregister_and_wildcard() -> None:
    registrar = Registrar()
    registrar.register("trunk1", register("<sip:a@127.0.0.1>;expires=100"), 0.0, SOURCE)
    registrar.register("trunk1", register("<sip:b@127.0.0.1>", cseq=2), 0.0, SOURCE)
    assert len(registrar.bindings("trunk1", 50.0)) == 2
    assert (
        registrar.register("trunk1", register("<sip:a@127.0.0.1>;expires=0", cseq=3), 1.0, SOURCE).status
        == 200
    )
    assert [str(b.contact.uri) for b in registrar.bindings("trunk1", 1.0)] == ["sip:b@127.0.0.1"]
    assert registrar.register("trunk1", register("*", cseq=4, expires="0"), 2.0, SOURCE).status == 200
    assert registrar.bindings("trunk1", 2.0) == []


def test_too_brief_stale_and_malformed_registrations_are_refused() -> None:
    registrar = Registrar(min_expires=60)
    brief = registrar.register("trunk1", register("<sip:a@127.0.0.1>", expires="10"), 0.0, SOURCE)
    assert (brief.status, brief.headers) == (423, [("Min-Expires", "60")])
    registrar.register("trunk1", register("<sip:a@127.0.0.1>", cseq=5), 0.0, SOURCE)
    assert registrar.register("trunk1", register("<sip:a@127.0.0.1>", cseq=5), 0.0, SOURCE).status == 500
    assert registrar.register("trunk1", register("*", cseq=9), 0.0, SOURCE).status == 400
    assert (
        registrar.register("trunk1", register("<sip:a@127.0.0.1>", expires="soon"), 0.0, SOURCE).status == 400
    )
    assert registrar.register("trunk1", register("<not a uri>", cseq=10), 0.0, SOURCE).status == 400
