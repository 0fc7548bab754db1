"""Pure parts of the store: UTC datetimes per dialect, value codecs, the upsert statement per dialect."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import Dialect

from switchboard.channels.whatsapp.senders import digits
from switchboard.core.models import Endpoint, EndpointType
from switchboard.store.base import insert_on_conflict
from switchboard.store.codec import (
    endpoint_from_json,
    endpoint_to_json,
    jsonable,
    times_from_json,
    times_to_json,
)
from switchboard.store.tables import NodeRow
from switchboard.store.types import UTCDateTime

CEST = timezone(timedelta(hours=2))
NOON_UTC = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
SQLITE = create_engine("sqlite://").dialect
POSTGRESQL = create_engine("postgresql+asyncpg://").dialect


def test_sqlite_gets_naive_utc_and_reads_back_aware() -> None:
    column = UTCDateTime()
    stored = column.process_bind_param(NOON_UTC.astimezone(CEST), SQLITE)
    assert stored == datetime(2026, 5, 1, 12, 0)
    assert stored is not None and stored.tzinfo is None
    assert column.process_result_value(stored, SQLITE) == NOON_UTC
    assert column.process_result_value(stored, SQLITE).tzinfo is UTC  # type: ignore[union-attr]


def test_postgresql_gets_aware_utc() -> None:
    column = UTCDateTime()
    stored = column.process_bind_param(NOON_UTC.astimezone(CEST), POSTGRESQL)
    assert stored == NOON_UTC
    assert stored is not None and stored.tzinfo is UTC
    assert column.process_bind_param(None, POSTGRESQL) is None


def test_naive_input_is_taken_as_utc() -> None:
    assert UTCDateTime().process_bind_param(datetime(2026, 5, 1, 12), POSTGRESQL) == NOON_UTC


def test_endpoint_json_round_trip_drops_nones() -> None:
    endpoint = Endpoint(EndpointType.SIP, username="alice", sip_trunk_id="trunk-1")
    data = endpoint_to_json(endpoint)
    assert data == {"type": "SIP", "username": "alice", "sip_trunk_id": "trunk-1"}
    assert endpoint_from_json(data) == endpoint


def test_times_round_trip_in_utc() -> None:
    times = [NOON_UTC, NOON_UTC.astimezone(CEST) + timedelta(minutes=1)]
    encoded = times_to_json(times)
    assert encoded[1].endswith("+00:00")
    assert times_from_json(encoded) == times
    assert times_from_json(None) == []


def test_jsonable_stringifies_what_json_cannot_hold() -> None:
    assert jsonable({"at": NOON_UTC, "n": 1}) == {"at": str(NOON_UTC), "n": 1}


@pytest.mark.parametrize(
    ("number", "expected"), [("+1 (555) 010-0000", "15550100000"), ("447700900123", "447700900123")]
)
def test_digits(number: str, expected: str) -> None:
    assert digits(number) == expected


@pytest.mark.parametrize("dialect", [SQLITE, POSTGRESQL])
def test_insert_on_conflict_compiles_for_both_dialects(dialect: Dialect) -> None:
    values = {"node_id": "k", "url": "u", "started_at": NOON_UTC, "heartbeat_at": NOON_UTC}
    nothing = insert_on_conflict(dialect.name, NodeRow, values, key=["node_id"])
    assert "ON CONFLICT (node_id) DO NOTHING" in str(nothing.compile(dialect=dialect)).replace('"', "")
    update = insert_on_conflict(dialect.name, NodeRow, values, key=["node_id"], update=["heartbeat_at"])
    assert "DO UPDATE SET heartbeat_at = excluded.heartbeat_at" in str(update.compile(dialect=dialect))


def test_insert_on_conflict_refuses_other_dialects() -> None:
    with pytest.raises(NotImplementedError, match="mysql"):
        insert_on_conflict("mysql", NodeRow, {"node_id": "k"}, key=["node_id"])
