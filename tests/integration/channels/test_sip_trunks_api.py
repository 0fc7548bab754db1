"""The SIP trunk API as raw JSON against a running server: bad input gets a 400 naming the field, in the
Calls error shape; what the SDK cannot send (OPUS, partial updates) is served too."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.calls_api_harness import Harness, running_harness

TRUNKS = "/calls/1/sip-trunks"


def static(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "STATIC",
        "name": "PBX",
        "channelLimit": 5,
        "billingPackage": {"packageType": "METERED"},
        "sourceHosts": ["192.0.2.10"],
    }
    return body | fields


def registered(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "REGISTERED",
        "name": "Branch",
        "channelLimit": 2,
        "billingPackage": {"packageType": "UNLIMITED"},
    }
    return body | fields


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_harness(tmp_path, create_config=False) as h:
        yield h


def refusal(response: httpx.Response, status: int = 400) -> str:
    assert response.status_code == status, response.text
    exception = response.json()["requestError"]["serviceException"]
    assert exception["messageId"]
    return str(exception["text"])


BAD_CREATES: list[tuple[dict[str, Any], str]] = [
    ({k: v for k, v in static().items() if k != "billingPackage"}, "billingPackage: Field required"),
    (static(billingPackage={"packageType": "FREE"}), "billingPackage.packageType: "),
    (static(channelLimit=0), "channelLimit: "),
    (static(channelLimit=1001), "channelLimit: "),
    (static(channelLimit="5"), "channelLimit: "),
    (static(codecs=["PCMU", "G729"]), "codecs[1]: G729 is not supported"),
    (static(codecs=["GSM"]), "codecs[0]: unknown codec 'GSM'"),
    (static(codecs=[]), "codecs: at least one codec"),
    (static(sourceHosts=["192.0.2.10:99999"]), "sourceHosts[0]: '192.0.2.10:99999' has port '99999'"),
    (static(sourceHosts=["sip:pbx@192.0.2.10"]), "sourceHosts[0]: "),
    (static(destinationHosts=["ok.example.com", "bad host"]), "destinationHosts[1]: "),
    (static(sourceHosts=[]), "sourceHosts: a STATIC trunk needs sourceHosts or destinationHosts"),
    (static(sourceHosts="192.0.2.10"), "sourceHosts: "),
    (static(type="PROVIDER"), "type: PROVIDER trunks are not supported"),
    (static(type="DYNAMIC"), "type: 'DYNAMIC' is not STATIC or REGISTERED"),
    ({k: v for k, v in static().items() if k != "type"}, "type: Field required"),
    (static(fax="T38"), "fax: T38 is not supported"),
    (static(dtmf="SIP_INFO"), "dtmf: "),
    (static(strategy="RANDOM"), "strategy: "),
    (static(numberFormat="LOCAL"), "numberFormat: "),
    (static(name=""), "name: "),
    (static(name="   "), "name: 1-128 characters"),
    (static(tls="yes"), "tls: "),
    (registered(sourceHosts=["192.0.2.10"]), "sourceHosts: not a field of REGISTERED trunks"),
    (static(inviteAuthentication=True), "inviteAuthentication: not a field of STATIC trunks"),
]


@pytest.mark.parametrize(("body", "named"), BAD_CREATES)
async def test_bad_trunks_are_refused_naming_the_field(
    harness: Harness, body: dict[str, Any], named: str
) -> None:
    text = refusal(await harness.client.post(TRUNKS, json=body))
    assert text.startswith(named), text
    assert (await harness.client.get(TRUNKS)).json()["paging"]["totalResults"] == 0


async def test_a_body_that_is_not_json_is_refused(harness: Harness) -> None:
    response = await harness.client.post(TRUNKS, content=b"{", headers={"Content-Type": "application/json"})
    refusal(response)


async def test_unknown_trunks_are_404_everywhere(harness: Harness) -> None:
    client = harness.client
    for response in (
        await client.get(f"{TRUNKS}/nope"),
        await client.put(f"{TRUNKS}/nope", json={"name": "x"}),
        await client.delete(f"{TRUNKS}/nope"),
        await client.get(f"{TRUNKS}/nope/status"),
        await client.post(f"{TRUNKS}/nope/status", json={"adminStatus": "DISABLED"}),
        await client.post(f"{TRUNKS}/nope/reset-password"),
    ):
        assert "sipTrunkId: SIP trunk 'nope' not found" in refusal(response, 404)


async def test_the_api_needs_a_key(harness: Harness) -> None:
    async with httpx.AsyncClient(base_url=harness.base_url) as anonymous:
        refusal(await anonymous.get(TRUNKS), 401)
        refusal(await anonymous.post(TRUNKS, json=static()), 401)


async def test_updates_keep_what_they_leave_out_and_refuse_a_type_change(harness: Harness) -> None:
    client = harness.client
    created = await client.post(TRUNKS, json=static(codecs=["OPUS", "PCMU"], tls=True, location="Zagreb"))
    assert created.status_code == 202, created.text
    trunk = created.json()
    assert trunk["codecs"] == ["OPUS", "PCMU"] and trunk["numberFormat"] == "E164"
    trunk_id = trunk["id"]

    updated = await client.put(f"{TRUNKS}/{trunk_id}", json={"name": "Renamed", "channelLimit": 7})
    assert updated.status_code == 202, updated.text
    after = updated.json()
    assert after["name"] == "Renamed" and after["channelLimit"] == 7
    assert {k: after[k] for k in ("codecs", "tls", "location", "sourceHosts")} == {
        "codecs": ["OPUS", "PCMU"],
        "tls": True,
        "location": "Zagreb",
        "sourceHosts": ["192.0.2.10"],
    }
    text = refusal(await client.put(f"{TRUNKS}/{trunk_id}", json={"type": "REGISTERED", "name": "x"}))
    assert text.startswith("type: ") and "cannot change" in text
    text = refusal(await client.put(f"{TRUNKS}/{trunk_id}", json={"name": "x", "sourceHosts": []}))
    assert text.startswith("sourceHosts: a STATIC trunk needs")
    text = refusal(await client.put(f"{TRUNKS}/{trunk_id}", json={"name": "x", "channelLimit": 0}))
    assert text.startswith("channelLimit: ")
    assert (await client.get(f"{TRUNKS}/{trunk_id}")).json() == after


async def test_status_and_password_refusals(harness: Harness) -> None:
    client = harness.client
    trunk_id = (await client.post(TRUNKS, json=static())).json()["id"]
    text = refusal(await client.post(f"{TRUNKS}/{trunk_id}/status", json={"adminStatus": "SYSTEM_DISABLED"}))
    assert text.startswith("adminStatus: 'SYSTEM_DISABLED' is not ENABLED or DISABLED")
    refusal(await client.post(f"{TRUNKS}/{trunk_id}/status", json={}))
    text = refusal(await client.post(f"{TRUNKS}/{trunk_id}/reset-password"))
    assert "only REGISTERED trunks have a password" in text


async def test_passwords_are_shown_only_when_issued(harness: Harness) -> None:
    client = harness.client
    created = (await client.post(TRUNKS, json=registered())).json()
    password = created["password"]
    assert created["username"] and password
    for response in (
        await client.get(TRUNKS),
        await client.get(f"{TRUNKS}/{created['id']}"),
        await client.put(f"{TRUNKS}/{created['id']}", json={"name": "n"}),
        await client.get(f"{TRUNKS}/{created['id']}/status"),
    ):
        assert password not in response.text and "password" not in response.text
    records = await harness.server.components.trunks.list()
    assert password not in repr(records)
