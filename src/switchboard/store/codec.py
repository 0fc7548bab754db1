"""Conversions between core values and their column forms."""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import datetime
from typing import Any

from switchboard.core.models import CallError, Endpoint, EndpointType, ErrorCode, InboundAction, InboundTarget
from switchboard.store.types import as_utc

_ENDPOINT_FIELDS = tuple(f.name for f in fields(Endpoint))


def endpoint_to_json(endpoint: Endpoint) -> dict[str, Any]:
    data = {name: value for name in _ENDPOINT_FIELDS if (value := getattr(endpoint, name)) is not None}
    data["type"] = endpoint.type.value
    return data


def endpoint_from_json(data: dict[str, Any]) -> Endpoint:
    return Endpoint(
        type=EndpointType(data["type"]),
        phone_number=data.get("phone_number"),
        username=data.get("username"),
        sip_trunk_id=data.get("sip_trunk_id"),
        identity=data.get("identity"),
        display_name=data.get("display_name"),
    )


def targets_to_json(targets: list[InboundTarget]) -> list[dict[str, Any]]:
    return [{"action": t.action.value, "id": t.id} for t in targets]


def targets_from_json(data: list[dict[str, Any]] | None) -> list[InboundTarget]:
    return [InboundTarget(InboundAction(item["action"]), item.get("id")) for item in data or []]


def error_from_columns(code: str | None, description: str | None) -> CallError | None:
    if code is None:
        return None
    return CallError(ErrorCode(code), description or "")


def jsonable(value: dict[str, Any]) -> dict[str, Any]:
    """A JSON-safe copy (values JSON cannot hold, such as datetimes, become strings)."""
    result: dict[str, Any] = json.loads(json.dumps(value, default=str))
    return result


def times_to_json(times: list[datetime]) -> list[str]:
    return [as_utc(t).isoformat() for t in times]


def times_from_json(values: list[str] | None) -> list[datetime]:
    return [as_utc(datetime.fromisoformat(v)) for v in values or []]
