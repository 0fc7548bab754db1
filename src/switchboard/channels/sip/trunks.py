"""SIP trunks: where calls to a business's PBX go and which peers may send us calls.

Infobip's trunk model (`/calls/1/sip-trunks`): a STATIC trunk names its peers by address (`sourceHosts`
may send us INVITEs, `destinationHosts` receive ours); a REGISTERED trunk's PBX registers with the
username and password we issued. Trunks are kept as channel records (kind `sip.trunk`).

A REGISTERED trunk's password is never stored: we keep the digest HA1 (RFC 7616 §3.4.2) for MD5 and
SHA-256 under the realm it was made for, which is all a registrar needs to verify `Authorization`. The
password is shown once, in the create and reset-password answers.

Concurrent calls per trunk (`channelLimit`) are counted in memory, per node.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import ipaddress
import re
import secrets
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from switchboard.core.errors import NotFound
from switchboard.core.ports import ChannelRecords
from switchboard.errors import SwitchboardError
from switchboard.media.engine import Codec, DtmfMode, LegSpec, SrtpPolicy, TransportProfile

TRUNK_KIND = "sip.trunk"
DEFAULT_REALM = "switchboard"
"""The digest realm credentials are issued under; each trunk keeps the realm its HA1 was made for."""
MAX_CHANNEL_LIMIT = 1000
MAX_HOSTS = 32
DEFAULT_SIP_PORT = 5060
DEFAULT_SIPS_PORT = 5061

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
HostResolver = Callable[[str], Awaitable[list[str]]]
"""host name -> the addresses it resolves to, as text."""


class TrunkError(SwitchboardError):
    """A trunk that cannot be saved as given; the message names the field."""

    status_hint = 400


class TrunkNotFound(NotFound):
    def __init__(self, trunk_id: str) -> None:
        super().__init__(f"sipTrunkId: SIP trunk {trunk_id!r} not found")
        self.trunk_id = trunk_id


class TrunkConflict(SwitchboardError):
    status_hint = 409


# -- enumerations (Infobip's names) -------------------------------------------------------------------


class TrunkType(enum.StrEnum):
    STATIC = "STATIC"
    REGISTERED = "REGISTERED"


class AudioCodec(enum.StrEnum):
    """Codecs a trunk may use. Infobip's G729 is refused (the media engine does not carry G.729);
    OPUS is ours, for PBXs that speak it (calls to WhatsApp then need no transcoding)."""

    PCMU = "PCMU"
    PCMA = "PCMA"
    OPUS = "OPUS"


UNSUPPORTED_CODECS: Mapping[str, str] = {
    "G729": "G729 is not supported (the media engine does not carry G.729); use PCMU, PCMA or OPUS",
}
DEFAULT_CODECS = (AudioCodec.PCMU, AudioCodec.PCMA)

_MEDIA_CODECS = {AudioCodec.PCMU: Codec.PCMU, AudioCodec.PCMA: Codec.PCMA, AudioCodec.OPUS: Codec.OPUS}


class DtmfType(enum.StrEnum):
    RFC2833 = "RFC2833"
    """Keys as RFC 4733 telephone-events (RFC 2833's successor)."""
    INBAND = "INBAND"


class FaxType(enum.StrEnum):
    """T38 is refused: fax relay is not carried."""

    NONE = "NONE"
    INBAND = "INBAND"


class NumberFormat(enum.StrEnum):
    E164 = "E164"
    INTERNATIONAL = "INTERNATIONAL"
    US_NATIONAL = "US_NATIONAL"


class Anonymization(enum.StrEnum):
    NONE = "NONE"
    REMOTE_PARTY_ID = "REMOTE_PARTY_ID"
    ASSERTED_IDENTITY = "ASSERTED_IDENTITY"
    PREFERRED_IDENTITY = "PREFERRED_IDENTITY"


class SelectionStrategy(enum.StrEnum):
    FAILOVER = "FAILOVER"
    """Destination hosts in the order given; the next when one does not take the call (no answer,
    transport error, 408, 503) or does not answer OPTIONS."""
    ROUND_ROBIN = "ROUND_ROBIN"
    """Each new call starts at the next host in turn; the others are tried after it as for FAILOVER."""


class AdminStatus(enum.StrEnum):
    ENABLED = "ENABLED"
    DISABLED = "DISABLED"


class RegistrationStatus(enum.StrEnum):
    REGISTERED = "REGISTERED"
    UNREGISTERED = "UNREGISTERED"


class BillingPackageType(enum.StrEnum):
    METERED = "METERED"
    UNLIMITED = "UNLIMITED"


# -- value objects ------------------------------------------------------------------------------------

_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_PORT = re.compile(r"^[0-9]{1,5}$")


def _parse_port(text: str, field: str, value: str) -> int:
    if not _PORT.match(text) or not 1 <= int(text) <= 65535:
        raise TrunkError(f"{field}: {value!r} has port {text!r}; a port is 1-65535")
    return int(text)


def _check_name(host: str, field: str, value: str) -> str:
    name = host.removesuffix(".")
    labels = name.split(".")
    if not name or len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise TrunkError(f"{field}: {value!r} is not host or host:port (an IP address or a DNS name)")
    if labels[-1].isdigit():
        raise TrunkError(f"{field}: {value!r} is not a valid IP address")
    return name.lower()


@dataclass(frozen=True, slots=True)
class HostPort:
    """`host` or `host:port`; an IPv6 address in brackets when a port follows (`[2001:db8::1]:5060`)."""

    host: str
    port: int | None = None

    @classmethod
    def parse(cls, value: str, field: str) -> HostPort:
        text = value.strip()
        if text.startswith("["):
            inside, sep, rest = text[1:].partition("]")
            if not sep or (rest and not rest.startswith(":")):
                raise TrunkError(f"{field}: {value!r} is not host or host:port")
            try:
                address = ipaddress.IPv6Address(inside)
            except ValueError:
                raise TrunkError(f"{field}: {value!r} is not a valid IPv6 address") from None
            port = _parse_port(rest[1:], field, value) if rest else None
            return cls(str(address), port)
        if text.count(":") > 1:
            try:
                return cls(str(ipaddress.IPv6Address(text)))
            except ValueError:
                raise TrunkError(f"{field}: {value!r} is not host or host:port") from None
        host, sep, port_text = text.partition(":")
        port = _parse_port(port_text, field, value) if sep else None
        try:
            return cls(str(ipaddress.IPv4Address(host)), port)
        except ValueError:
            return cls(_check_name(host, field, value), port)

    @property
    def address(self) -> Address | None:
        """The host as an IP address, or None when it is a DNS name."""
        try:
            return ipaddress.ip_address(self.host)
        except ValueError:
            return None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"


def parse_hosts(values: Iterable[str], field: str) -> tuple[HostPort, ...]:
    """`values` parsed (`field[i]` named on error), duplicates removed, order kept."""
    hosts: list[HostPort] = []
    for index, value in enumerate(values):
        host = HostPort.parse(value, f"{field}[{index}]")
        if host not in hosts:
            hosts.append(host)
    if len(hosts) > MAX_HOSTS:
        raise TrunkError(f"{field}: at most {MAX_HOSTS} hosts")
    return tuple(hosts)


def parse_codecs(values: Iterable[str], field: str = "codecs") -> tuple[AudioCodec, ...]:
    codecs: list[AudioCodec] = []
    for index, value in enumerate(values):
        if value in UNSUPPORTED_CODECS:
            raise TrunkError(f"{field}[{index}]: {UNSUPPORTED_CODECS[value]}")
        try:
            codec = AudioCodec(value)
        except ValueError:
            allowed = ", ".join(c.value for c in AudioCodec)
            raise TrunkError(f"{field}[{index}]: unknown codec {value!r}; one of {allowed}") from None
        if codec not in codecs:
            codecs.append(codec)
    if not codecs:
        raise TrunkError(f"{field}: at least one codec")
    return tuple(codecs)


@dataclass(frozen=True, slots=True)
class BillingPackage:
    package_type: BillingPackageType
    country_code: str | None = None
    address_id: str | None = None


def _hex(algorithm: str, text: str) -> str:
    return hashlib.new(algorithm, text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class DigestCredentials:
    """What a registrar needs to check a REGISTERED trunk's digest `Authorization` (RFC 7616): the
    username, the realm and HA1 = H(username:realm:password) for MD5 and SHA-256. No password."""

    username: str
    realm: str
    ha1_md5: str
    ha1_sha256: str

    @classmethod
    def make(cls, username: str, password: str, realm: str = DEFAULT_REALM) -> DigestCredentials:
        a1 = f"{username}:{realm}:{password}"
        return cls(username, realm, _hex("md5", a1), _hex("sha256", a1))

    def ha1(self, algorithm: str) -> str | None:
        """HA1 for `algorithm` (`MD5`, `SHA-256`, their `-sess` forms take the same base; RFC 7616
        §3.4.2 computes the session HA1 from it), or None for an algorithm we do not keep."""
        match algorithm.upper().removesuffix("-SESS"):
            case "MD5":
                return self.ha1_md5
            case "SHA-256":
                return self.ha1_sha256
            case _:
                return None

    def verifies(self, password: str) -> bool:
        expected = DigestCredentials.make(self.username, password, self.realm).ha1_sha256
        return secrets.compare_digest(expected, self.ha1_sha256)


def issue_credentials(realm: str = DEFAULT_REALM) -> tuple[DigestCredentials, str]:
    """A fresh username and password for a REGISTERED trunk: the credentials to keep, the password
    to show once."""
    username = f"sb{secrets.token_hex(6)}"
    password = secrets.token_urlsafe(18)
    return DigestCredentials.make(username, password, realm), password


def new_trunk_id() -> str:
    return str(uuid.uuid4())


# -- trunks -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class TrunkBase:
    """What every trunk has (Infobip's common fields)."""

    id: str
    name: str
    channel_limit: int
    billing_package: BillingPackage
    location: str | None = None
    tls: bool = False
    international_calls_allowed: bool = False
    codecs: tuple[AudioCodec, ...] = DEFAULT_CODECS
    dtmf: DtmfType = DtmfType.RFC2833
    fax: FaxType = FaxType.NONE
    number_format: NumberFormat = NumberFormat.E164
    anonymization: Anonymization = Anonymization.NONE
    admin_status: AdminStatus = AdminStatus.ENABLED

    def __post_init__(self) -> None:
        if not self.name.strip() or len(self.name) > 128:
            raise TrunkError("name: 1-128 characters")
        if not 1 <= self.channel_limit <= MAX_CHANNEL_LIMIT:
            raise TrunkError(f"channelLimit: {self.channel_limit} is not 1-{MAX_CHANNEL_LIMIT}")
        if not self.codecs:
            raise TrunkError("codecs: at least one codec")

    @property
    def enabled(self) -> bool:
        return self.admin_status is AdminStatus.ENABLED

    @property
    def media_codecs(self) -> tuple[Codec, ...]:
        """The trunk's codecs as the media engine names them, telephone-event last for RFC 2833 keys."""
        codecs = tuple(_MEDIA_CODECS[c] for c in self.codecs)
        return (*codecs, Codec.TELEPHONE_EVENT) if self.dtmf is DtmfType.RFC2833 else codecs

    def leg_spec(self) -> LegSpec:
        """The media leg toward this trunk: plain RTP, SDES-SRTP when the trunk uses TLS."""
        return LegSpec(
            profile=TransportProfile.RTP,
            codecs=self.media_codecs,
            srtp=SrtpPolicy.SDES if self.tls else SrtpPolicy.NONE,
            dtmf=DtmfMode.RFC4733 if self.dtmf is DtmfType.RFC2833 else DtmfMode.INBAND,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class StaticTrunk(TrunkBase):
    """Peers named by address: `source_hosts` may send us INVITEs (any port when a host has none),
    `destination_hosts` receive ours, chosen by `strategy`; `sip_options` sends OPTIONS health checks."""

    source_hosts: tuple[HostPort, ...] = ()
    destination_hosts: tuple[HostPort, ...] = ()
    strategy: SelectionStrategy = SelectionStrategy.FAILOVER
    sip_options: bool = False

    def __post_init__(self) -> None:
        TrunkBase.__post_init__(self)
        if not self.source_hosts and not self.destination_hosts:
            raise TrunkError("sourceHosts: a STATIC trunk needs sourceHosts or destinationHosts (or both)")

    @property
    def type(self) -> TrunkType:
        return TrunkType.STATIC

    def destination_port(self, host: HostPort) -> int:
        """Where to send to `host`: its port, else 5061 for TLS and 5060 otherwise."""
        return host.port or (DEFAULT_SIPS_PORT if self.tls else DEFAULT_SIP_PORT)


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisteredTrunk(TrunkBase):
    """A PBX that registers with digest credentials we issued; `invite_authentication` challenges its
    INVITEs too."""

    credentials: DigestCredentials
    invite_authentication: bool = False

    @property
    def type(self) -> TrunkType:
        return TrunkType.REGISTERED

    @property
    def username(self) -> str:
        return self.credentials.username


SipTrunk = StaticTrunk | RegisteredTrunk


# -- records ------------------------------------------------------------------------------------------


def _common_data(trunk: SipTrunk) -> dict[str, Any]:
    return {
        "type": trunk.type.value,
        "id": trunk.id,
        "name": trunk.name,
        "channel_limit": trunk.channel_limit,
        "billing_package": {
            "package_type": trunk.billing_package.package_type.value,
            "country_code": trunk.billing_package.country_code,
            "address_id": trunk.billing_package.address_id,
        },
        "location": trunk.location,
        "tls": trunk.tls,
        "international_calls_allowed": trunk.international_calls_allowed,
        "codecs": [c.value for c in trunk.codecs],
        "dtmf": trunk.dtmf.value,
        "fax": trunk.fax.value,
        "number_format": trunk.number_format.value,
        "anonymization": trunk.anonymization.value,
        "admin_status": trunk.admin_status.value,
    }


def trunk_to_data(trunk: SipTrunk) -> dict[str, Any]:
    data = _common_data(trunk)
    match trunk:
        case StaticTrunk():
            data |= {
                "source_hosts": [str(h) for h in trunk.source_hosts],
                "destination_hosts": [str(h) for h in trunk.destination_hosts],
                "strategy": trunk.strategy.value,
                "sip_options": trunk.sip_options,
            }
        case RegisteredTrunk():
            c = trunk.credentials
            data |= {
                "credentials": {
                    "username": c.username,
                    "realm": c.realm,
                    "ha1_md5": c.ha1_md5,
                    "ha1_sha256": c.ha1_sha256,
                },
                "invite_authentication": trunk.invite_authentication,
            }
    return data


def trunk_from_data(data: Mapping[str, Any]) -> SipTrunk:
    billing = data["billing_package"]
    common: dict[str, Any] = {
        "id": data["id"],
        "name": data["name"],
        "channel_limit": data["channel_limit"],
        "billing_package": BillingPackage(
            package_type=BillingPackageType(billing["package_type"]),
            country_code=billing.get("country_code"),
            address_id=billing.get("address_id"),
        ),
        "location": data.get("location"),
        "tls": data["tls"],
        "international_calls_allowed": data["international_calls_allowed"],
        "codecs": tuple(AudioCodec(c) for c in data["codecs"]),
        "dtmf": DtmfType(data["dtmf"]),
        "fax": FaxType(data["fax"]),
        "number_format": NumberFormat(data["number_format"]),
        "anonymization": Anonymization(data["anonymization"]),
        "admin_status": AdminStatus(data["admin_status"]),
    }
    if TrunkType(data["type"]) is TrunkType.STATIC:
        return StaticTrunk(
            **common,
            source_hosts=parse_hosts(data["source_hosts"], "sourceHosts"),
            destination_hosts=parse_hosts(data["destination_hosts"], "destinationHosts"),
            strategy=SelectionStrategy(data["strategy"]),
            sip_options=data["sip_options"],
        )
    c = data["credentials"]
    return RegisteredTrunk(
        **common,
        credentials=DigestCredentials(c["username"], c["realm"], c["ha1_md5"], c["ha1_sha256"]),
        invite_authentication=data["invite_authentication"],
    )


# -- registrations ------------------------------------------------------------------------------------


class Registrations(Protocol):
    """Who is registered now (the SIP channel's registrar fills this in)."""

    def registration_status(self, trunk_id: str) -> RegistrationStatus: ...


class NoRegistrations:
    """No registrar running: every trunk is UNREGISTERED."""

    def registration_status(self, trunk_id: str) -> RegistrationStatus:
        return RegistrationStatus.UNREGISTERED


async def system_host_resolver(host: str) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    return [str(info[4][0]) for info in infos]


def _plain(address: Address) -> Address:
    """An IPv4-mapped IPv6 address as its IPv4 address (a dual-stack socket reports IPv4 peers so)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


# -- the directory ------------------------------------------------------------------------------------


class TrunkDirectory:
    """The trunks, kept as channel records, with lookups for the SIP channel and the call counters.

    `identify` resolves source host names through `resolver`, remembering answers for `dns_ttl_s`.
    """

    def __init__(
        self,
        records: ChannelRecords,
        *,
        resolver: HostResolver = system_host_resolver,
        clock: Callable[[], float] = time.monotonic,
        dns_ttl_s: float = 30.0,
    ) -> None:
        self._records = records
        self._resolver = resolver
        self._clock = clock
        self._dns_ttl_s = dns_ttl_s
        self._resolved: dict[str, tuple[float, frozenset[Address]]] = {}
        self._active: dict[str, int] = {}

    # storage

    async def list(self, *, name: str | None = None) -> Sequence[SipTrunk]:
        """Every trunk, oldest first; only those called `name` when it is given."""
        trunks = [trunk_from_data(r.data) for r in await self._records.list(TRUNK_KIND)]
        return [t for t in trunks if name is None or t.name == name]

    async def get(self, trunk_id: str) -> SipTrunk | None:
        record = await self._records.get(TRUNK_KIND, trunk_id)
        return trunk_from_data(record.data) if record is not None else None

    async def require(self, trunk_id: str) -> SipTrunk:
        trunk = await self.get(trunk_id)
        if trunk is None:
            raise TrunkNotFound(trunk_id)
        return trunk

    async def create(self, trunk: SipTrunk) -> None:
        if await self.get(trunk.id) is not None:
            raise TrunkConflict(f"sipTrunkId: SIP trunk {trunk.id!r} exists")
        if isinstance(trunk, RegisteredTrunk) and await self.by_username(trunk.username) is not None:
            raise TrunkConflict(f"username: {trunk.username!r} is taken by another trunk")
        await self._records.save(TRUNK_KIND, trunk.id, trunk_to_data(trunk))

    async def update(self, trunk: SipTrunk) -> None:
        existing = await self.require(trunk.id)
        if existing.type is not trunk.type:
            raise TrunkError(f"type: trunk {trunk.id!r} is {existing.type.value}; the type cannot change")
        await self._records.save(TRUNK_KIND, trunk.id, trunk_to_data(trunk))

    async def delete(self, trunk_id: str) -> SipTrunk:
        trunk = await self.require(trunk_id)
        await self._records.delete(TRUNK_KIND, trunk_id)
        self._active.pop(trunk_id, None)
        return trunk

    async def set_admin_status(self, trunk_id: str, status: AdminStatus) -> SipTrunk:
        trunk = replace(await self.require(trunk_id), admin_status=status)
        await self._records.save(TRUNK_KIND, trunk.id, trunk_to_data(trunk))
        return trunk

    async def reset_password(self, trunk_id: str) -> tuple[RegisteredTrunk, str]:
        """New credentials for a REGISTERED trunk (same username); the new password, shown once."""
        trunk = await self.require(trunk_id)
        if not isinstance(trunk, RegisteredTrunk):
            raise TrunkError(
                f"sipTrunkId: trunk {trunk_id!r} is {trunk.type.value}; "
                "only REGISTERED trunks have a password"
            )
        password = secrets.token_urlsafe(18)
        credentials = DigestCredentials.make(trunk.username, password, trunk.credentials.realm)
        updated = replace(trunk, credentials=credentials)
        await self._records.save(TRUNK_KIND, trunk.id, trunk_to_data(updated))
        return updated, password

    # lookups for the SIP channel

    async def by_username(self, username: str) -> RegisteredTrunk | None:
        for trunk in await self.list():
            if isinstance(trunk, RegisteredTrunk) and trunk.username == username:
                return trunk
        return None

    async def identify(self, source_ip: str, source_port: int) -> StaticTrunk | None:
        """The STATIC trunk one of whose `source_hosts` is the sender of a request from
        `source_ip:source_port` (a host without a port matches any port; names are resolved).

        Enabled trunks win over disabled ones, then a host with a port over one without, then the
        oldest trunk. A disabled trunk is returned when it is the only match: the caller refuses its
        calls (so a disabled trunk's PBX is told so rather than treated as a stranger).
        """
        try:
            source = _plain(ipaddress.ip_address(source_ip.split("%", 1)[0]))
        except ValueError:
            return None
        best: tuple[tuple[int, int, int], StaticTrunk] | None = None
        for order, trunk in enumerate(await self.list()):
            if not isinstance(trunk, StaticTrunk):
                continue
            for host in trunk.source_hosts:
                if host.port is not None and host.port != source_port:
                    continue
                if source not in await self._addresses(host):
                    continue
                rank = (0 if trunk.enabled else 1, 0 if host.port is not None else 1, order)
                if best is None or rank < best[0]:
                    best = (rank, trunk)
        return best[1] if best is not None else None

    async def _addresses(self, host: HostPort) -> frozenset[Address]:
        literal = host.address
        if literal is not None:
            return frozenset({_plain(literal)})
        now = self._clock()
        cached = self._resolved.get(host.host)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            found = frozenset(
                _plain(ipaddress.ip_address(a.split("%", 1)[0])) for a in await self._resolver(host.host)
            )
        except (OSError, ValueError):
            found = frozenset()
        self._resolved[host.host] = (now + self._dns_ttl_s, found)
        return found

    # channel limits

    def active_calls(self, trunk_id: str) -> int:
        return self._active.get(trunk_id, 0)

    def try_acquire(self, trunk: SipTrunk) -> bool:
        """Count one more call on `trunk`; False (nothing counted) when it is at its `channel_limit`."""
        active = self._active.get(trunk.id, 0)
        if active >= trunk.channel_limit:
            return False
        self._active[trunk.id] = active + 1
        return True

    def release(self, trunk_id: str) -> None:
        """One call counted by `try_acquire` ended."""
        active = self._active.get(trunk_id, 0)
        if active <= 1:
            self._active.pop(trunk_id, None)
        else:
            self._active[trunk_id] = active - 1
