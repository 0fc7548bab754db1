"""SIP trunks: host parsing, codecs, digest credentials, the directory's lookups and channel counters."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest

from support.fakes import InMemoryChannelRecords
from switchboard.channels.sip.trunks import (
    AdminStatus,
    BillingPackage,
    BillingPackageType,
    DigestCredentials,
    DtmfType,
    HostPort,
    RegisteredTrunk,
    StaticTrunk,
    TrunkConflict,
    TrunkDirectory,
    TrunkError,
    TrunkNotFound,
    issue_credentials,
    new_trunk_id,
    parse_codecs,
    parse_hosts,
    trunk_from_data,
    trunk_to_data,
)
from switchboard.media.engine import Codec, DtmfMode, SrtpPolicy, TransportProfile

BILLING = BillingPackage(BillingPackageType.METERED)


def static(*sources: str, destinations: tuple[str, ...] = (), **kwargs: object) -> StaticTrunk:
    fields: dict[str, object] = {
        "id": new_trunk_id(),
        "name": "pbx",
        "channel_limit": 2,
        "billing_package": BILLING,
        "source_hosts": parse_hosts(sources, "sourceHosts"),
        "destination_hosts": parse_hosts(destinations, "destinationHosts"),
    }
    return StaticTrunk(**(fields | kwargs))  # type: ignore[arg-type]


def registered(username: str = "alice", password: str = "s3cret") -> RegisteredTrunk:
    return RegisteredTrunk(
        id=new_trunk_id(),
        name="office",
        channel_limit=5,
        billing_package=BILLING,
        credentials=DigestCredentials.make(username, password),
    )


class Resolver:
    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def __call__(self, host: str) -> list[str]:
        self.asked.append(host)
        if host not in self.answers:
            raise OSError("unknown host")
        return self.answers[host]


# -- hosts ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("10.0.0.5", "10.0.0.5", None),
        ("10.0.0.5:5070", "10.0.0.5", 5070),
        ("pbx.example.com", "pbx.example.com", None),
        ("PBX.Example.com.:5060", "pbx.example.com", 5060),
        ("[2001:db8::1]:5062", "2001:db8::1", 5062),
        ("[2001:db8::1]", "2001:db8::1", None),
        ("2001:db8::1", "2001:db8::1", None),
        ("localhost", "localhost", None),
    ],
)
def test_hosts_parse_as_host_or_host_port(text: str, host: str, port: int | None) -> None:
    parsed = HostPort.parse(text, "sourceHosts[0]")
    assert (parsed.host, parsed.port) == (host, port)
    assert HostPort.parse(str(parsed), "x") == parsed


@pytest.mark.parametrize(
    "text",
    ["", "10.0.0.5:", "10.0.0.5:0", "10.0.0.5:70000", "10.0.0.5:sip", "sip:10.0.0.5", "a b", "-pbx.com",
     "10.0.0.999", "[2001:db8::1", "[nope]:5060", "[2001:db8::1]x", "http://pbx", "pbx.com:5060:1"],
)  # fmt: skip
def test_bad_hosts_are_refused_naming_the_field(text: str) -> None:
    with pytest.raises(TrunkError, match=r"^destinationHosts\[3\]: "):
        HostPort.parse(text, "destinationHosts[3]")


def test_duplicate_hosts_are_kept_once() -> None:
    assert [str(h) for h in parse_hosts(["10.0.0.1", "10.0.0.1", "10.0.0.2:5060"], "h")] == [
        "10.0.0.1",
        "10.0.0.2:5060",
    ]


# -- codecs and media ------------------------------------------------------------------------------------


def test_g729_is_refused_with_the_reason() -> None:
    with pytest.raises(TrunkError, match=r"codecs\[1\]: G729 is not supported"):
        parse_codecs(["PCMU", "G729"])


def test_unknown_codecs_and_empty_lists_are_refused() -> None:
    with pytest.raises(TrunkError, match=r"codecs\[0\]: unknown codec 'GSM'"):
        parse_codecs(["GSM"])
    with pytest.raises(TrunkError, match="codecs: at least one"):
        parse_codecs([])


def test_the_leg_toward_a_trunk_follows_its_codecs_dtmf_and_tls() -> None:
    trunk = static("10.0.0.1", codecs=parse_codecs(["PCMA", "OPUS"]))
    spec = trunk.leg_spec()
    assert spec.profile is TransportProfile.RTP
    assert spec.codecs == (Codec.PCMA, Codec.OPUS, Codec.TELEPHONE_EVENT)
    assert spec.srtp is SrtpPolicy.NONE and spec.dtmf is DtmfMode.RFC4733
    inband = replace(trunk, dtmf=DtmfType.INBAND, tls=True).leg_spec()
    assert inband.codecs == (Codec.PCMA, Codec.OPUS)
    assert inband.srtp is SrtpPolicy.SDES and inband.dtmf is DtmfMode.INBAND


# -- trunks --------------------------------------------------------------------------------------------


def test_a_static_trunk_needs_some_host() -> None:
    with pytest.raises(TrunkError, match="sourceHosts: a STATIC trunk needs"):
        static()


@pytest.mark.parametrize("limit", [0, -1, 1001])
def test_channel_limit_is_1_to_1000(limit: int) -> None:
    with pytest.raises(TrunkError, match="channelLimit"):
        static("10.0.0.1", channel_limit=limit)


def test_destination_port_defaults_by_transport() -> None:
    trunk = static(destinations=("pbx.example.com", "10.0.0.2:5080"))
    first, second = trunk.destination_hosts
    assert trunk.destination_port(first) == 5060
    assert trunk.destination_port(second) == 5080
    assert replace(trunk, tls=True).destination_port(first) == 5061


def test_trunks_round_trip_through_their_records() -> None:
    for trunk in (static("10.0.0.1", destinations=("[::1]:5070",), sip_options=True), registered()):
        assert trunk_from_data(trunk_to_data(trunk)) == trunk


# -- credentials ---------------------------------------------------------------------------------------


def test_credentials_keep_ha1_for_md5_and_sha256_but_no_password() -> None:
    creds = DigestCredentials.make("alice", "s3cret", "switchboard")
    assert creds.ha1("MD5") == hashlib.md5(b"alice:switchboard:s3cret").hexdigest()
    assert creds.ha1("md5-sess") == creds.ha1("MD5")
    assert creds.ha1("SHA-256") == hashlib.sha256(b"alice:switchboard:s3cret").hexdigest()
    assert creds.ha1("SHA-512-256") is None
    assert "s3cret" not in repr(trunk_to_data(registered(password="s3cret")))
    assert creds.verifies("s3cret") and not creds.verifies("S3cret")


def test_issued_credentials_verify_their_password() -> None:
    creds, password = issue_credentials()
    other, _ = issue_credentials()
    assert creds.verifies(password) and creds.username != other.username
    assert len(password) >= 20


# -- the directory -------------------------------------------------------------------------------------


async def test_directory_stores_updates_and_deletes() -> None:
    directory = TrunkDirectory(InMemoryChannelRecords())
    trunk = static("10.0.0.1")
    await directory.create(trunk)
    with pytest.raises(TrunkConflict):
        await directory.create(trunk)
    renamed = replace(trunk, name="renamed")
    await directory.update(renamed)
    assert await directory.get(trunk.id) == renamed
    assert [t.id for t in await directory.list(name="renamed")] == [trunk.id]
    assert await directory.list(name="pbx") == []
    with pytest.raises(TrunkError, match=r"type: .* the type cannot change"):
        await directory.update(replace(registered(), id=trunk.id))
    disabled = await directory.set_admin_status(trunk.id, AdminStatus.DISABLED)
    assert not disabled.enabled and not (await directory.require(trunk.id)).enabled
    assert await directory.delete(trunk.id) == disabled
    with pytest.raises(TrunkNotFound):
        await directory.delete(trunk.id)
    assert await directory.get(trunk.id) is None


async def test_usernames_are_unique_and_found() -> None:
    directory = TrunkDirectory(InMemoryChannelRecords())
    alice = registered("alice")
    await directory.create(alice)
    with pytest.raises(TrunkConflict, match="username"):
        await directory.create(registered("alice"))
    assert await directory.by_username("alice") == alice
    assert await directory.by_username("bob") is None


async def test_reset_password_replaces_the_credentials() -> None:
    directory = TrunkDirectory(InMemoryChannelRecords())
    alice = registered("alice", "old")
    await directory.create(alice)
    updated, password = await directory.reset_password(alice.id)
    stored = await directory.by_username("alice")
    assert stored == updated and stored.credentials.verifies(password)
    assert not stored.credentials.verifies("old")
    pbx = static("10.0.0.1")
    await directory.create(pbx)
    with pytest.raises(TrunkError, match="only REGISTERED"):
        await directory.reset_password(pbx.id)


async def test_identify_matches_source_addresses_and_ports() -> None:
    resolver = Resolver({"pbx.example.com": ["192.0.2.10", "2001:db8::10"]})
    directory = TrunkDirectory(InMemoryChannelRecords(), resolver=resolver)
    any_port = static("192.0.2.1", "pbx.example.com", name="any port")
    one_port = static("192.0.2.1:5070", name="one port")
    await directory.create(any_port)
    await directory.create(one_port)
    await directory.create(registered())

    assert await directory.identify("192.0.2.1", 5060) == any_port
    assert await directory.identify("192.0.2.1", 5070) == one_port
    assert await directory.identify("::ffff:192.0.2.1", 5070) == one_port
    assert await directory.identify("192.0.2.10", 40000) == any_port
    assert await directory.identify("2001:db8:0::10", 5060) == any_port
    assert await directory.identify("192.0.2.99", 5060) is None
    assert await directory.identify("not an address", 5060) is None


async def test_identify_prefers_enabled_trunks_and_remembers_dns_answers() -> None:
    now = [0.0]
    resolver = Resolver({"pbx.example.com": ["192.0.2.10"]})
    directory = TrunkDirectory(
        InMemoryChannelRecords(), resolver=resolver, clock=lambda: now[0], dns_ttl_s=30
    )
    old = static("pbx.example.com", admin_status=AdminStatus.DISABLED)
    new = static("192.0.2.10")
    await directory.create(old)
    assert await directory.identify("192.0.2.10", 5060) == old
    await directory.create(new)
    assert await directory.identify("192.0.2.10", 5060) == new
    assert resolver.asked == ["pbx.example.com"]
    now[0] = 31
    resolver.answers["pbx.example.com"] = ["192.0.2.11"]
    assert await directory.identify("192.0.2.11", 5060) == old
    assert resolver.asked == ["pbx.example.com", "pbx.example.com"]


async def test_channel_limit_counts_calls_per_trunk() -> None:
    directory = TrunkDirectory(InMemoryChannelRecords())
    trunk = static("10.0.0.1", channel_limit=2)
    other = static("10.0.0.2", channel_limit=1)
    assert directory.try_acquire(trunk) and directory.try_acquire(trunk)
    assert not directory.try_acquire(trunk)
    assert directory.try_acquire(other)
    assert directory.active_calls(trunk.id) == 2
    directory.release(trunk.id)
    assert directory.active_calls(trunk.id) == 1
    assert directory.try_acquire(trunk)
    directory.release(other.id)
    directory.release(other.id)
    assert directory.active_calls(other.id) == 0
