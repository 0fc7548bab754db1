"""A registrar (RFC 3261 §10.3): bindings of an account's contacts with expiry, sans I/O.

The endpoint authenticates a REGISTER first; `Registrar.register` then applies it and says what to answer.
Bindings are keyed by the authenticated username (the account of a REGISTERED trunk).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from switchboard.channels.sip.digest import Challenge, DigestServer, authorization_user
from switchboard.channels.sip.message import Address, Request, SipParseError


@dataclass(frozen=True, slots=True)
class Binding:
    contact: Address
    expires_at: float
    call_id: str
    cseq: int
    source: tuple[str, str, int]
    """(transport, host, port) the REGISTER came from: where the contact is reachable behind a NAT."""


@dataclass(frozen=True, slots=True)
class RegisterOutcome:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)


class Registrar:
    def __init__(
        self, *, default_expires: int = 3600, min_expires: int = 60, max_expires: int = 7200
    ) -> None:
        self.default_expires = default_expires
        self.min_expires = min_expires
        self.max_expires = max_expires
        self._bindings: dict[str, dict[str, Binding]] = {}

    def register(
        self, username: str, request: Request, now: float, source: tuple[str, str, int]
    ) -> RegisterOutcome:
        try:
            return self._register(username, request, now, source)
        except (SipParseError, ValueError):
            return RegisterOutcome(400)

    def _register(
        self, username: str, request: Request, now: float, source: tuple[str, str, int]
    ) -> RegisterOutcome:
        header_expires = request.headers.get("Expires")
        default = int(header_expires) if header_expires is not None else self.default_expires
        values = request.headers.get_all("Contact")
        bindings = self._bindings.setdefault(username, {})
        call_id, cseq = request.call_id, request.cseq.number
        if "*" in (v.strip() for v in values):
            if len(values) != 1 or default != 0:
                return RegisterOutcome(400)
            bindings.clear()
            return RegisterOutcome(200)
        for value in values:
            contact = Address.parse(value)
            expires_text = contact.param("expires")
            expires = int(expires_text) if expires_text is not None else default
            if 0 < expires < self.min_expires:
                return RegisterOutcome(423, [("Min-Expires", str(self.min_expires))])
            key = str(contact.uri)
            existing = bindings.get(key)
            if existing and existing.call_id == call_id and cseq <= existing.cseq:
                return RegisterOutcome(500)
            if expires == 0:
                bindings.pop(key, None)
                continue
            plain = Address(contact.uri, contact.display_name)
            expires_at = now + min(expires, self.max_expires)
            bindings[key] = Binding(plain, expires_at, call_id, cseq, source)
        return RegisterOutcome(
            200, [("Contact", self._contact_header(b, now)) for b in self.bindings(username, now)]
        )

    @staticmethod
    def _contact_header(binding: Binding, now: float) -> str:
        return f"{binding.contact};expires={max(0, int(binding.expires_at - now))}"

    def bindings(self, username: str, now: float) -> list[Binding]:
        """The user's unexpired bindings, most recently refreshed last."""
        current = self._bindings.get(username, {})
        for key in [k for k, b in current.items() if b.expires_at <= now]:
            del current[key]
        return sorted(current.values(), key=lambda b: b.expires_at)

    def usernames(self) -> list[str]:
        return list(self._bindings)

    def contact(self, username: str, now: float) -> Binding | None:
        """Where to reach `username` now, or None when it is not registered."""
        bindings = self.bindings(username, now)
        return bindings[-1] if bindings else None


class Registration(Protocol):
    """What the endpoint asks about a REGISTER: the status and headers to answer with."""

    async def register(
        self, request: Request, source: tuple[str, str, int], now: float
    ) -> RegisterOutcome: ...


AsyncHa1Lookup = Callable[[str, str], Awaitable[str | None]]
"""(username, algorithm) → HA1, looked up where the accounts are kept."""


class DigestRegistration:
    """REGISTER answered by a `Registrar` behind digest authentication (401 until the credentials fit)."""

    def __init__(self, registrar: Registrar, digest: DigestServer, ha1_for: AsyncHa1Lookup) -> None:
        self.registrar = registrar
        self.digest = digest
        self._ha1_for = ha1_for

    async def register(self, request: Request, source: tuple[str, str, int], now: float) -> RegisterOutcome:
        claimed = authorization_user(request, self.digest.realm)
        ha1 = await self._ha1_for(*claimed) if claimed is not None else None

        def lookup(username: str, algorithm: str) -> str | None:
            return ha1 if claimed == (username, algorithm.upper()) else None

        result = self.digest.verify(request, lookup, now)
        if isinstance(result, Challenge):
            return RegisterOutcome(401, self.digest.challenge(now, stale=result.stale))
        return self.registrar.register(result.username, request, now, source)


def username_at(registrar: Registrar, source: tuple[str, str, int], now: float) -> str | None:
    """The account whose current binding was registered from `source` (its REGISTERs' flow)."""
    for username in list(registrar.usernames()):
        if any(b.source == source for b in registrar.bindings(username, now)):
            return username
    return None
