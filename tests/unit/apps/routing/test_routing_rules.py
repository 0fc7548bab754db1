"""Route matching, the order destinations are tried in, time windows and route validation: pure."""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import TypeAdapter, ValidationError

from switchboard.apps.routing.matching import (
    CallFacts,
    choose_route,
    destination_order,
    within_windows,
)
from switchboard.apps.routing.schemas import (
    Destination,
    RouteRequest,
    RouteResponse,
    RouteStatus,
    TimeWindow,
    format_time,
)

SIP = {"type": "ENDPOINT", "value": {"type": "SIP", "sipTrunkId": "pbx"}}


def make(order: int, criteria: list[dict[str, Any]], status: str = "ENABLED") -> RouteResponse:
    return RouteResponse.model_validate(
        {
            "id": f"r{order}",
            "name": f"route {order}",
            "status": status,
            "order": order,
            "criteria": criteria,
            "destinations": [SIP],
        }
    )


WHATSAPP_CALL = CallFacts("WHATSAPP", "447700900123", "15550001111", custom_data={"tier": "gold"})


def test_the_first_matching_route_by_order_wins() -> None:
    routes = [
        make(3, []),
        make(2, [{"value": {"type": "WHATSAPP", "from": "4477.*"}}]),
        make(1, [{"value": {"type": "WHATSAPP", "from": "49.*"}}]),
    ]
    assert choose_route(routes, WHATSAPP_CALL).id == "r2"  # type: ignore[union-attr]
    assert choose_route(routes, CallFacts("WHATSAPP", "33612", "1")).id == "r3"  # type: ignore[union-attr]


def test_disabled_routes_are_skipped_unless_asked_for() -> None:
    routes = [make(1, [], status="DISABLED"), make(2, [{"to": "nothing"}])]
    assert choose_route(routes, WHATSAPP_CALL) is None
    assert choose_route(routes, WHATSAPP_CALL, use_disabled=True).id == "r1"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("criterion", "call", "matches"),
    [
        ({"to": "1555.*"}, WHATSAPP_CALL, True),
        ({"to": "1555"}, WHATSAPP_CALL, False),  # the whole number must match
        ({"value": {"type": "WHATSAPP"}}, WHATSAPP_CALL, True),
        ({"value": {"type": "PHONE"}}, WHATSAPP_CALL, False),
        (
            {"value": {"type": "WHATSAPP", "customData": [{"key": "tier", "value": "g.*"}]}},
            WHATSAPP_CALL,
            True,
        ),
        (
            {"value": {"type": "WHATSAPP", "customData": [{"key": "tier", "value": "silver"}]}},
            WHATSAPP_CALL,
            False,
        ),
        ({"value": {"type": "WHATSAPP", "customData": [{"key": "region"}]}}, WHATSAPP_CALL, False),
        ({"value": {"type": "PHONE", "from": "44.*"}}, CallFacts("PHONE", "447700900123", "1"), True),
        (
            {
                "value": {
                    "type": "SIP",
                    "sipTrunkId": "t1",
                    "username": "alice.*",
                    "headers": [{"headerName": "X-Team", "headerValue": "sales"}],
                }
            },
            CallFacts("SIP", "alice.b", "100", sip_trunk_id="t1", headers={"x-team": "sales"}),
            True,
        ),
        (
            {"value": {"type": "SIP", "sipTrunkId": "t1"}},
            CallFacts("SIP", "alice", "100", sip_trunk_id="t2"),
            False,
        ),
        (
            {"value": {"type": "SIP", "headers": [{"headerName": "X-Team"}]}},
            CallFacts("SIP", "alice", "100", headers={}),
            False,
        ),
        ({"value": {"type": "WEBRTC", "identity": "agent-\\d+"}}, CallFacts("WEBRTC", "agent-7", ""), True),
        ({"value": {"type": "WEBRTC", "identity": "agent-\\d+"}}, CallFacts("WEBRTC", "agent-x", ""), False),
        (
            {"value": {"type": "APPLICATION", "callsConfigurationId": "app"}},
            CallFacts("WHATSAPP", "1", "2", calls_configuration_id="app"),
            True,
        ),
        ({"value": {"type": "APPLICATION"}}, CallFacts("WHATSAPP", "1", "2"), False),
    ],
)
def test_criteria(criterion: dict[str, Any], call: CallFacts, matches: bool) -> None:
    found = choose_route([make(1, [criterion])], call)
    assert (found is not None) is matches


def destinations(*specs: tuple[int, int]) -> list[Destination]:
    adapter: TypeAdapter[Destination] = TypeAdapter(Destination)
    return [adapter.validate_python({**SIP, "priority": p, "weight": w}) for p, w in specs]


def test_destinations_without_priorities_keep_their_order() -> None:
    plain = [TypeAdapter(Destination).validate_python(SIP) for _ in range(3)]  # type: ignore[var-annotated]
    assert destination_order(plain, random.Random(1)) == [0, 1, 2]


def test_priorities_come_first_and_weights_share_a_priority() -> None:
    listed = destinations((2, 1), (1, 3), (1, 1), (3, 1))
    firsts: Counter[int] = Counter()
    rng = random.Random(7)
    for _ in range(4000):
        order = destination_order(listed, rng)
        assert sorted(order[:2]) == [1, 2] and order[2:] == [0, 3]
        firsts[order[0]] += 1
    assert 0.7 < firsts[1] / 4000 < 0.8  # weight 3 against 1


def window(days: list[str], start: tuple[int, int] | None, end: tuple[int, int] | None) -> TimeWindow:
    body: dict[str, Any] = {"days": days}
    if start:
        body["from"] = {"hour": start[0], "minute": start[1]}
    if end:
        body["to"] = {"hour": end[0], "minute": end[1]}
    return TimeWindow.model_validate(body)


MONDAY_9 = datetime(2026, 11, 30, 9, 0)  # a Monday


def test_time_windows() -> None:
    office = [window(["MONDAY", "TUESDAY"], (9, 0), (17, 30))]
    assert within_windows(office, MONDAY_9)
    assert not within_windows(office, MONDAY_9.replace(hour=8, minute=59))
    assert not within_windows(office, MONDAY_9.replace(hour=17, minute=30))
    assert not within_windows(office, datetime(2026, 12, 2, 10, 0))  # Wednesday
    assert within_windows(None, MONDAY_9) and within_windows([], MONDAY_9)
    night = [window(["MONDAY"], (22, 0), (6, 0))]
    assert within_windows(night, MONDAY_9.replace(hour=23))
    assert within_windows(night, datetime(2026, 12, 1, 5, 59))  # Tuesday early, from Monday's window
    assert not within_windows(night, datetime(2026, 11, 30, 5, 0))  # Monday early: Sunday not listed
    whole_day = [window(["SUNDAY"], None, None)]
    assert within_windows(whole_day, datetime(2026, 12, 6, 0, 0))
    assert not within_windows(whole_day, MONDAY_9)


def test_route_validation() -> None:
    with pytest.raises(ValidationError, match="not a valid regular expression"):
        RouteRequest.model_validate({"name": "r", "criteria": [{"to": "(("}], "destinations": [SIP]})
    with pytest.raises(ValidationError, match="either every destination or none"):
        RouteRequest.model_validate({"name": "r", "destinations": [{**SIP, "weight": 2}, SIP]})
    with pytest.raises(ValidationError, match=r"criteria\[0\] \(WHATSAPP\).*destinations\[0\] is a PHONE"):
        RouteRequest.model_validate(
            {
                "name": "r",
                "criteria": [{"value": {"type": "WHATSAPP"}}],
                "destinations": [{"type": "ENDPOINT", "value": {"type": "PHONE", "phoneNumber": "4477"}}],
            }
        )
    ok = RouteRequest.model_validate(
        {"name": "r", "criteria": [{"value": {"type": "WHATSAPP"}}], "destinations": [SIP] * 10}
    )
    assert len(ok.destinations) == 10
    with pytest.raises(ValidationError):
        RouteRequest.model_validate({"name": "r", "destinations": [SIP] * 11})
    assert RouteStatus("DISABLED") is RouteStatus.DISABLED


def test_times_are_written_in_utc() -> None:
    berlin = datetime(2026, 12, 4, 10, 30, 5, 250000, tzinfo=ZoneInfo("Europe/Berlin"))
    assert format_time(berlin) == "2026-12-04T09:30:05.250+0000"
