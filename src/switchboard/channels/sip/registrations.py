"""Registrations of REGISTERED trunks: their PBXs REGISTER with the credentials the trunk API issued."""

from __future__ import annotations

from collections.abc import Callable

from switchboard.channels.sip.digest import Authenticated, Challenge, DigestServer
from switchboard.channels.sip.message import Request
from switchboard.channels.sip.registrar import (
    DigestRegistration,
    RegisterOutcome,
    Registrar,
    username_at,
)
from switchboard.channels.sip.trunks import (
    DEFAULT_REALM,
    RegisteredTrunk,
    RegistrationStatus,
    TrunkDirectory,
)


class TrunkRegistrations:
    """The registrar of REGISTERED trunks (keyed by the trunk's username), checked against the HA1s the
    trunk keeps; also says whether a trunk is registered and which trunk a flow belongs to."""

    def __init__(
        self,
        trunks: TrunkDirectory,
        clock: Callable[[], float],
        *,
        realm: str = DEFAULT_REALM,
        algorithms: tuple[str, ...] = ("MD5", "SHA-256"),
    ) -> None:
        self.trunks = trunks
        self.registrar = Registrar()
        # MD5 first: many PBXs (and sipp) answer only the first challenge and know no other algorithm;
        # one that knows SHA-256 still finds it in the second (RFC 8760 §2.4).
        self.digest = DigestServer(realm, algorithms=algorithms)
        self._clock = clock
        self._usernames: dict[str, str] = {}
        self._registration = DigestRegistration(self.registrar, self.digest, self._ha1)

    async def _ha1(self, username: str, algorithm: str) -> str | None:
        trunk = await self.trunks.by_username(username)
        if trunk is None or not trunk.enabled:
            return None
        self._usernames[trunk.id] = username
        return trunk.credentials.ha1(algorithm)

    async def register(self, request: Request, source: tuple[str, str, int], now: float) -> RegisterOutcome:
        return await self._registration.register(request, source, now)

    def registration_status(self, trunk_id: str) -> RegistrationStatus:
        username = self._usernames.get(trunk_id)
        if username is not None and self.registrar.contact(username, self._clock()) is not None:
            return RegistrationStatus.REGISTERED
        return RegistrationStatus.UNREGISTERED

    async def trunk_at(self, source: tuple[str, str, int]) -> RegisteredTrunk | None:
        """The REGISTERED trunk whose PBX registered from `source`."""
        username = username_at(self.registrar, source, self._clock())
        return await self.trunks.by_username(username) if username is not None else None

    def check_invite(self, trunk: RegisteredTrunk, invite: Request) -> Authenticated | Challenge:
        """An INVITE from a trunk with `inviteAuthentication` must carry its credentials."""

        def ha1(username: str, algorithm: str) -> str | None:
            return trunk.credentials.ha1(algorithm) if username == trunk.username else None

        return self.digest.verify(invite, ha1, self._clock())
