"""Trunk bodies become trunks: defaults, partial updates, fields of the other trunk type, answers."""

from __future__ import annotations

from typing import Any

import pytest

from switchboard.channels.sip.api import (
    TrunkCreateBody,
    TrunkUpdateBody,
    trunk_from_create,
    trunk_from_update,
    trunk_json,
)
from switchboard.channels.sip.trunks import (
    AudioCodec,
    FaxType,
    NumberFormat,
    RegisteredTrunk,
    SelectionStrategy,
    StaticTrunk,
    TrunkError,
)


def create(**fields: Any) -> TrunkCreateBody:
    base = {"type": "STATIC", "name": "pbx", "channelLimit": 3, "billingPackage": {"packageType": "METERED"}}
    return TrunkCreateBody.model_validate(base | fields)


def test_a_static_trunk_takes_infobip_defaults() -> None:
    trunk, password = trunk_from_create(create(destinationHosts=["pbx.example.com"]))
    assert isinstance(trunk, StaticTrunk) and password is None
    assert trunk.codecs == (AudioCodec.PCMU, AudioCodec.PCMA)
    assert trunk.strategy is SelectionStrategy.FAILOVER and not trunk.sip_options
    assert trunk.fax is FaxType.NONE and trunk.number_format is NumberFormat.E164
    answer = trunk_json(trunk, sbc_hosts=["203.0.113.7:5060"])
    assert answer["sbcHosts"] == {"primary": ["203.0.113.7:5060"], "backup": []}
    assert answer["sipOptions"] == {"enabled": False} and "username" not in answer


def test_a_registered_trunk_is_issued_credentials_shown_once() -> None:
    trunk, password = trunk_from_create(create(type="REGISTERED", inviteAuthentication=True))
    assert isinstance(trunk, RegisteredTrunk) and password is not None
    assert trunk.invite_authentication and trunk.credentials.verifies(password)
    assert trunk_json(trunk, password=password)["password"] == password
    answer = trunk_json(trunk)
    assert "password" not in answer and "sourceHosts" not in answer
    assert answer["username"] == trunk.username


def test_an_update_changes_only_what_it_sends() -> None:
    trunk, _ = trunk_from_create(create(sourceHosts=["192.0.2.1"], codecs=["PCMA"], tls=True))
    body = TrunkUpdateBody.model_validate({"name": "new", "destinationHosts": ["192.0.2.2:5080"]})
    updated = trunk_from_update(trunk, body)
    assert isinstance(updated, StaticTrunk)
    assert updated.name == "new" and updated.codecs == (AudioCodec.PCMA,) and updated.tls
    assert [str(h) for h in updated.source_hosts] == ["192.0.2.1"]
    assert [str(h) for h in updated.destination_hosts] == ["192.0.2.2:5080"]
    assert updated.id == trunk.id


def test_an_update_keeps_the_credentials_and_refuses_other_types_fields() -> None:
    trunk, _ = trunk_from_create(create(type="REGISTERED"))
    updated = trunk_from_update(
        trunk, TrunkUpdateBody.model_validate({"name": "n", "inviteAuthentication": True})
    )
    assert isinstance(updated, RegisteredTrunk) and updated.credentials == trunk.credentials
    with pytest.raises(TrunkError, match="strategy: not a field of REGISTERED"):
        trunk_from_update(trunk, TrunkUpdateBody.model_validate({"name": "n", "strategy": "ROUND_ROBIN"}))
    with pytest.raises(TrunkError, match=r"type: .* cannot change"):
        trunk_from_update(trunk, TrunkUpdateBody.model_validate({"name": "n", "type": "STATIC"}))
