"""Rules no application can route around: the PSTN ban and WhatsApp call permissions.

Permission rules follow Meta's "user call permissions": a temporary permission lasts 7 days; at most 1
permission request per 24 h and 2 per 7 days (a connected call resets these); at most 100 connected
business-initiated calls per user per 24 h; 4 unanswered calls in a row revoke the permission.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from switchboard.core.errors import NoCallPermission, PolicyViolation, PstnForbidden
from switchboard.core.models import Endpoint, EndpointType, PermissionStatus
from switchboard.core.ports import PermissionRecord

TEMPORARY_PERMISSION = timedelta(days=7)
REQUEST_LIMITS = ((timedelta(hours=24), 1), (timedelta(days=7), 2))
CALL_LIMITS = ((timedelta(hours=24), 100),)
UNANSWERED_BEFORE_REVOKE = 4


def check_not_pstn(*endpoints: Endpoint) -> None:
    """Raise if a WhatsApp call would be connected to the PSTN (any PHONE endpoint beside WHATSAPP)."""
    types = {e.type for e in endpoints}
    if EndpointType.PHONE in types and (EndpointType.WHATSAPP in types or len(types) == 1):
        raise PstnForbidden()


@dataclass(frozen=True, slots=True)
class Limit:
    period: timedelta
    max_allowed: int
    current_usage: int
    expires_at: datetime | None
    """When the oldest counted use leaves the window (only when the limit is reached)."""

    @property
    def reached(self) -> bool:
        return self.current_usage >= self.max_allowed


def _limits(uses: list[datetime], windows: tuple[tuple[timedelta, int], ...], now: datetime) -> list[Limit]:
    out = []
    for period, max_allowed in windows:
        inside = sorted(t for t in uses if t > now - period)
        expires = inside[0] + period if len(inside) >= max_allowed and inside else None
        out.append(Limit(period, max_allowed, len(inside), expires))
    return out


def effective_status(record: PermissionRecord | None, now: datetime) -> PermissionStatus:
    if record is None:
        return PermissionStatus.NO_PERMISSION
    if record.status is PermissionStatus.TEMPORARY and (
        record.expires_at is None or record.expires_at <= now
    ):
        return PermissionStatus.NO_PERMISSION
    return record.status


def request_limits(record: PermissionRecord | None, now: datetime) -> list[Limit]:
    return _limits(record.requests if record else [], REQUEST_LIMITS, now)


def call_limits(record: PermissionRecord | None, now: datetime) -> list[Limit]:
    return _limits(record.connected_calls if record else [], CALL_LIMITS, now)


def can_request_permission(record: PermissionRecord | None, now: datetime) -> bool:
    if effective_status(record, now) is PermissionStatus.PERMANENT:
        return False
    return not any(limit.reached for limit in request_limits(record, now))


def can_start_call(record: PermissionRecord | None, now: datetime) -> bool:
    if effective_status(record, now) is PermissionStatus.NO_PERMISSION:
        return False
    return not any(limit.reached for limit in call_limits(record, now))


def check_call_permission(record: PermissionRecord | None, sender_id: str, user: str, now: datetime) -> None:
    """Raise `NoCallPermission` unless a business-initiated call to `user` may be placed now."""
    status = effective_status(record, now)
    if status is PermissionStatus.NO_PERMISSION:
        detail = "permission expired" if record and record.status is not status else ""
        raise NoCallPermission(user, sender_id, detail or "send a call permission request first")
    for limit in call_limits(record, now):
        if limit.reached:
            raise NoCallPermission(
                user,
                sender_id,
                f"{limit.max_allowed} connected calls per {limit.period} reached"
                + (f", next allowed at {limit.expires_at.isoformat()}" if limit.expires_at else ""),
            )


def check_request_allowed(record: PermissionRecord | None, sender_id: str, user: str, now: datetime) -> None:
    if effective_status(record, now) is PermissionStatus.PERMANENT:
        raise PolicyViolation(f"user {user} already granted permanent call permission to {sender_id}")
    for limit in request_limits(record, now):
        if limit.reached:
            raise PolicyViolation(
                f"call permission request limit reached for user {user}: {limit.max_allowed} per "
                f"{limit.period}"
                + (f", next allowed at {limit.expires_at.isoformat()}" if limit.expires_at else "")
            )


def grant(record: PermissionRecord, *, permanent: bool, expires_at: datetime | None, now: datetime) -> None:
    record.status = PermissionStatus.PERMANENT if permanent else PermissionStatus.TEMPORARY
    record.expires_at = None if permanent else (expires_at or now + TEMPORARY_PERMISSION)
    record.unanswered_in_a_row = 0
    record.updated_at = now


def revoke(record: PermissionRecord, now: datetime) -> None:
    record.status = PermissionStatus.NO_PERMISSION
    record.expires_at = None
    record.updated_at = now


def record_request(record: PermissionRecord, now: datetime) -> None:
    record.requests = [t for t in record.requests if t > now - timedelta(days=7)] + [now]
    record.updated_at = now


def record_call_outcome(record: PermissionRecord, *, connected: bool, now: datetime) -> None:
    """A connected call resets the request limits; unanswered calls in a row revoke the permission."""
    if connected:
        record.connected_calls = [t for t in record.connected_calls if t > now - timedelta(hours=24)] + [now]
        record.requests = []
        record.unanswered_in_a_row = 0
    else:
        record.unanswered_in_a_row += 1
        if record.unanswered_in_a_row >= UNANSWERED_BEFORE_REVOKE:
            revoke(record, now)
    record.updated_at = now
