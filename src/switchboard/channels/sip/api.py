"""Infobip's SIP trunk API (`/calls/1/sip-trunks`), served from the trunk directory.

Status codes are the official SDK's: 202 for create, update and delete (their bodies are the trunk),
200 otherwise. PROVIDER trunks (Infobip's integrations with named vendors) are refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr
from pydantic.alias_generators import to_camel

from switchboard.channels.sip.trunks import (
    MAX_CHANNEL_LIMIT,
    AdminStatus,
    Anonymization,
    BillingPackage,
    BillingPackageType,
    DigestCredentials,
    DtmfType,
    FaxType,
    NumberFormat,
    RegisteredTrunk,
    Registrations,
    SelectionStrategy,
    SipTrunk,
    StaticTrunk,
    TrunkDirectory,
    TrunkError,
    TrunkType,
    issue_credentials,
    new_trunk_id,
    parse_codecs,
    parse_hosts,
)
from switchboard.httpapi.paging import PageParam, SizeParam, paged

TAGS: list[str | Enum] = ["SIP trunks"]


class Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class BillingPackageBody(Wire):
    package_type: BillingPackageType
    country_code: StrictStr | None = None
    address_id: StrictStr | None = None


class SipOptionsBody(Wire):
    enabled: StrictBool = False


ChannelLimit = Annotated[StrictInt, Field(ge=1, le=MAX_CHANNEL_LIMIT)]
Name = Annotated[StrictStr, Field(min_length=1, max_length=128)]


class TrunkUpdateBody(Wire):
    """PUT: what the SDK's update models send; a field left out keeps its value."""

    type: StrictStr | None = None
    name: Name
    location: StrictStr | None = None
    tls: StrictBool | None = None
    international_calls_allowed: StrictBool | None = None
    channel_limit: ChannelLimit | None = None
    billing_package: BillingPackageBody | None = None
    codecs: list[StrictStr] | None = None
    dtmf: DtmfType | None = None
    fax: StrictStr | None = None
    number_format: NumberFormat | None = None
    anonymization: Anonymization | None = None
    source_hosts: list[StrictStr] | None = None
    destination_hosts: list[StrictStr] | None = None
    strategy: SelectionStrategy | None = None
    sip_options: SipOptionsBody | None = None
    invite_authentication: StrictBool | None = None


class TrunkCreateBody(TrunkUpdateBody):
    type: StrictStr
    channel_limit: ChannelLimit
    billing_package: BillingPackageBody


class StatusBody(Wire):
    admin_status: StrictStr


FIELD_NAMES = {name: field.alias or name for name, field in TrunkUpdateBody.model_fields.items()}
STATIC_ONLY = ("source_hosts", "destination_hosts", "strategy", "sip_options")
REGISTERED_ONLY = ("invite_authentication",)
PLAIN_FIELDS = frozenset(
    [
        "name",
        "location",
        "tls",
        "international_calls_allowed",
        "channel_limit",
        "dtmf",
        "number_format",
        "anonymization",
    ]
)
"""Fields taken as they are (the others are parsed into the trunk's types)."""


def _trunk_type(value: str) -> TrunkType:
    if value == "PROVIDER":
        raise TrunkError("type: PROVIDER trunks are not supported; use STATIC or REGISTERED")
    try:
        return TrunkType(value)
    except ValueError:
        raise TrunkError(f"type: {value!r} is not STATIC or REGISTERED") from None


def _fax(value: str) -> FaxType:
    if value == "T38":
        raise TrunkError("fax: T38 is not supported (fax relay is not carried); use NONE or INBAND")
    try:
        return FaxType(value)
    except ValueError:
        raise TrunkError(f"fax: {value!r} is not NONE or INBAND") from None


def _refuse_foreign_fields(body: TrunkUpdateBody, trunk_type: TrunkType) -> None:
    foreign = REGISTERED_ONLY if trunk_type is TrunkType.STATIC else STATIC_ONLY
    for name in foreign:
        if getattr(body, name) is not None:
            raise TrunkError(f"{FIELD_NAMES[name]}: not a field of {trunk_type.value} trunks")


def _apply(trunk: SipTrunk, body: TrunkUpdateBody) -> SipTrunk:
    """`trunk` with every field `body` gives (validated; `TrunkError` names the field)."""
    given = {name for name in body.model_fields_set if getattr(body, name) is not None}
    changes: dict[str, Any] = {}
    for name in PLAIN_FIELDS & given:
        changes[name] = getattr(body, name)
    if body.billing_package is not None:
        b = body.billing_package
        changes["billing_package"] = BillingPackage(b.package_type, b.country_code, b.address_id)
    if body.codecs is not None:
        changes["codecs"] = parse_codecs(body.codecs)
    if body.fax is not None:
        changes["fax"] = _fax(body.fax)
    if isinstance(trunk, StaticTrunk):
        if body.source_hosts is not None:
            changes["source_hosts"] = parse_hosts(body.source_hosts, "sourceHosts")
        if body.destination_hosts is not None:
            changes["destination_hosts"] = parse_hosts(body.destination_hosts, "destinationHosts")
        if body.strategy is not None:
            changes["strategy"] = body.strategy
        if body.sip_options is not None:
            changes["sip_options"] = body.sip_options.enabled
    elif body.invite_authentication is not None:
        changes["invite_authentication"] = body.invite_authentication
    return replace(trunk, **changes)


def trunk_from_create(body: TrunkCreateBody) -> tuple[SipTrunk, str | None]:
    """A new trunk as the body describes it, and for a REGISTERED trunk the password issued."""
    trunk_type = _trunk_type(body.type)
    _refuse_foreign_fields(body, trunk_type)
    b = body.billing_package
    common: dict[str, Any] = {
        "id": new_trunk_id(),
        "name": body.name,
        "channel_limit": body.channel_limit,
        "billing_package": BillingPackage(b.package_type, b.country_code, b.address_id),
    }
    if trunk_type is TrunkType.STATIC:
        sources = parse_hosts(body.source_hosts or [], "sourceHosts")
        destinations = parse_hosts(body.destination_hosts or [], "destinationHosts")
        base: SipTrunk = StaticTrunk(**common, source_hosts=sources, destination_hosts=destinations)
        password = None
    else:
        credentials, password = issue_credentials()
        base = RegisteredTrunk(**common, credentials=credentials)
    return _apply(base, body), password


def trunk_from_update(existing: SipTrunk, body: TrunkUpdateBody) -> SipTrunk:
    if body.type is not None and _trunk_type(body.type) is not existing.type:
        raise TrunkError(f"type: trunk {existing.id!r} is {existing.type.value}; the type cannot change")
    _refuse_foreign_fields(body, existing.type)
    return _apply(existing, body)


def trunk_json(
    trunk: SipTrunk, *, sbc_hosts: Sequence[str] = (), password: str | None = None
) -> dict[str, Any]:
    """The trunk as Infobip answers it; the password only when it was just issued."""
    billing: dict[str, Any] = {"packageType": trunk.billing_package.package_type.value}
    if trunk.billing_package.country_code is not None:
        billing["countryCode"] = trunk.billing_package.country_code
    if trunk.billing_package.address_id is not None:
        billing["addressId"] = trunk.billing_package.address_id
    out: dict[str, Any] = {
        "id": trunk.id,
        "type": trunk.type.value,
        "name": trunk.name,
        **({"location": trunk.location} if trunk.location is not None else {}),
        "tls": trunk.tls,
        "codecs": [c.value for c in trunk.codecs],
        "dtmf": trunk.dtmf.value,
        "fax": trunk.fax.value,
        "numberFormat": trunk.number_format.value,
        "internationalCallsAllowed": trunk.international_calls_allowed,
        "channelLimit": trunk.channel_limit,
        "anonymization": trunk.anonymization.value,
        "billingPackage": billing,
    }
    if sbc_hosts:
        out["sbcHosts"] = {"primary": list(sbc_hosts), "backup": []}
    match trunk:
        case StaticTrunk():
            out |= {
                "sourceHosts": [str(h) for h in trunk.source_hosts],
                "destinationHosts": [str(h) for h in trunk.destination_hosts],
                "strategy": trunk.strategy.value,
                "sipOptions": {"enabled": trunk.sip_options},
            }
        case RegisteredTrunk():
            out |= {"username": trunk.username, "inviteAuthentication": trunk.invite_authentication}
            if password is not None:
                out["password"] = password
    return out


def _credentials_json(credentials: DigestCredentials, password: str) -> dict[str, str]:
    return {"username": credentials.username, "password": password}


def build_router(
    trunks: TrunkDirectory,
    registrations: Registrations,
    *,
    sbc_hosts: Sequence[str] = (),
) -> APIRouter:
    """`sbc_hosts`: the addresses PBXs reach us on, answered as the trunks' `sbcHosts`."""
    router = APIRouter()

    def render(trunk: SipTrunk, password: str | None = None) -> dict[str, Any]:
        return trunk_json(trunk, sbc_hosts=sbc_hosts, password=password)

    @router.post("/calls/1/sip-trunks", status_code=202, tags=TAGS, summary="Create a SIP trunk")
    async def create_sip_trunk(body: TrunkCreateBody) -> dict[str, Any]:
        trunk, password = trunk_from_create(body)
        await trunks.create(trunk)
        return render(trunk, password)

    @router.get("/calls/1/sip-trunks", tags=TAGS, summary="List SIP trunks")
    async def get_sip_trunks(
        name: Annotated[str | None, Query(description="Only trunks with this name.")] = None,
        page: PageParam = 0,
        size: SizeParam = 20,
    ) -> dict[str, Any]:
        return paged([render(t) for t in await trunks.list(name=name)], page, size)

    @router.get("/calls/1/sip-trunks/{sipTrunkId}", tags=TAGS, summary="Get a SIP trunk")
    async def get_sip_trunk(sipTrunkId: str) -> dict[str, Any]:
        return render(await trunks.require(sipTrunkId))

    @router.put("/calls/1/sip-trunks/{sipTrunkId}", status_code=202, tags=TAGS, summary="Update a SIP trunk")
    async def update_sip_trunk(sipTrunkId: str, body: TrunkUpdateBody) -> dict[str, Any]:
        trunk = trunk_from_update(await trunks.require(sipTrunkId), body)
        await trunks.update(trunk)
        return render(trunk)

    @router.delete(
        "/calls/1/sip-trunks/{sipTrunkId}", status_code=202, tags=TAGS, summary="Delete a SIP trunk"
    )
    async def delete_sip_trunk(sipTrunkId: str) -> dict[str, Any]:
        return render(await trunks.delete(sipTrunkId))

    @router.get("/calls/1/sip-trunks/{sipTrunkId}/status", tags=TAGS, summary="Get a SIP trunk's status")
    async def get_sip_trunk_status(sipTrunkId: str) -> dict[str, Any]:
        trunk = await trunks.require(sipTrunkId)
        out: dict[str, Any] = {
            "adminStatus": trunk.admin_status.value,
            "actionStatus": {"status": "SUCCESS"},
            "activeCalls": trunks.active_calls(trunk.id),
        }
        if isinstance(trunk, RegisteredTrunk):
            out["registrationStatus"] = registrations.registration_status(trunk.id).value
        return out

    @router.post(
        "/calls/1/sip-trunks/{sipTrunkId}/status", tags=TAGS, summary="Enable or disable a SIP trunk"
    )
    async def set_sip_trunk_status(sipTrunkId: str, body: StatusBody) -> dict[str, Any]:
        try:
            status = AdminStatus(body.admin_status)
        except ValueError:
            raise TrunkError(f"adminStatus: {body.admin_status!r} is not ENABLED or DISABLED") from None
        trunk = await trunks.set_admin_status(sipTrunkId, status)
        return {"adminStatus": trunk.admin_status.value}

    @router.post(
        "/calls/1/sip-trunks/{sipTrunkId}/reset-password",
        tags=TAGS,
        summary="Issue a new password for a REGISTERED trunk",
    )
    async def reset_sip_trunk_password(sipTrunkId: str) -> dict[str, str]:
        trunk, password = await trunks.reset_password(sipTrunkId)
        return _credentials_json(trunk.credentials, password)

    return router
