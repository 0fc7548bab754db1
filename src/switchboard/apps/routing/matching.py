"""Which route a call takes and in which order its destinations are tried: pure functions, no I/O.

A route matches when any of its criteria matches (a route without criteria matches every call); the
first matching route by `order` wins. Regular expressions match the whole value. Destinations with
priorities are tried lowest priority first, and within one priority in a random order weighted by
`weight`; without priorities, in the order given.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time

from switchboard.apps.routing.schemas import (
    ApplicationCriteria,
    CustomDataEntry,
    Day,
    Destination,
    PhoneCriteria,
    RouteResponse,
    RouteStatus,
    SearchCriteria,
    SipCriteria,
    TimeWindow,
    WebRtcCriteria,
    WhatsAppCriteria,
)


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What routing knows of a call: who calls (`endpoint_type`, `from_`), whom (`to`), and the rest."""

    endpoint_type: str
    """PHONE, SIP, WEBRTC or WHATSAPP."""
    from_: str
    to: str
    sip_trunk_id: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    custom_data: Mapping[str, str] = field(default_factory=dict)
    calls_configuration_id: str | None = None


def _matches(regex: str | None, value: str | None) -> bool:
    """A missing regex matches anything; a regex matches the whole of a present value."""
    if regex is None:
        return True
    return value is not None and re.fullmatch(regex, value) is not None


def _custom_data(entries: Sequence[CustomDataEntry] | None, data: Mapping[str, str]) -> bool:
    return all(e.key in data and _matches(e.value, data[e.key]) for e in entries or ())


def criterion_matches(criterion: SearchCriteria, call: CallFacts) -> bool:
    if not _matches(criterion.to, call.to):
        return False
    match criterion.value:
        case None:
            return True
        case PhoneCriteria(from_=from_):
            return call.endpoint_type == "PHONE" and _matches(from_, call.from_)
        case WhatsAppCriteria(from_=from_, custom_data=entries):
            return (
                call.endpoint_type == "WHATSAPP"
                and _matches(from_, call.from_)
                and _custom_data(entries, call.custom_data)
            )
        case SipCriteria(sip_trunk_id=trunk, username=username, headers=headers):
            received = {name.lower(): value for name, value in call.headers.items()}
            return (
                call.endpoint_type == "SIP"
                and (trunk is None or trunk == call.sip_trunk_id)
                and _matches(username, call.from_)
                and all(
                    h.header_name.lower() in received
                    and _matches(h.header_value, received[h.header_name.lower()])
                    for h in headers or ()
                )
            )
        case WebRtcCriteria(identity=identity, custom_data=entries):
            return (
                call.endpoint_type == "WEBRTC"
                and _matches(identity, call.from_)
                and _custom_data(entries, call.custom_data)
            )
        case ApplicationCriteria(calls_configuration_id=configuration):
            return call.calls_configuration_id is not None and configuration in (
                None,
                call.calls_configuration_id,
            )
    return False


def route_matches(route: RouteResponse, call: CallFacts) -> bool:
    return not route.criteria or any(criterion_matches(c, call) for c in route.criteria)


def choose_route(
    routes: Iterable[RouteResponse], call: CallFacts, *, use_disabled: bool = False
) -> RouteResponse | None:
    """The first matching route by `order`; disabled routes only when `use_disabled`."""
    for route in sorted(routes, key=lambda r: r.order):
        if (use_disabled or route.status is RouteStatus.ENABLED) and route_matches(route, call):
            return route
    return None


def destination_order(destinations: Sequence[Destination], rng: random.Random) -> list[int]:
    """The indexes of `destinations` in the order they are tried."""
    if all(d.priority is None for d in destinations):
        return list(range(len(destinations)))
    order: list[int] = []
    for priority in sorted({d.priority or 0 for d in destinations}):
        group = [i for i, d in enumerate(destinations) if (d.priority or 0) == priority]
        while group:
            weights = [destinations[i].weight or 1 for i in group]
            (picked,) = rng.choices(group, weights=weights)
            order.append(picked)
            group.remove(picked)
    return order


DAYS = list(Day)
"""Monday first, as `datetime.weekday()` counts."""


def _window_allows(window: TimeWindow, now: datetime) -> bool:
    start = time(window.from_.hour, window.from_.minute) if window.from_ else time(0, 0)
    end = time(window.to.hour, window.to.minute) if window.to else None
    today = DAYS[now.weekday()] in window.days
    yesterday = DAYS[(now.weekday() - 1) % 7] in window.days
    moment = now.time().replace(tzinfo=None)
    if end is None or start < end:
        return today and start <= moment and (end is None or moment < end)
    if start == end:
        return today
    return (today and moment >= start) or (yesterday and moment < end)


def within_windows(windows: Sequence[TimeWindow] | None, now: datetime) -> bool:
    """Whether `now` (in the routing time zone) is inside any of `windows`; no windows: always."""
    return not windows or any(_window_allows(w, now) for w in windows)
