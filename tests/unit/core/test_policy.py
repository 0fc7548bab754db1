from datetime import UTC, datetime, timedelta

import pytest

from switchboard.core import policy
from switchboard.core.errors import NoCallPermission, PolicyViolation, PstnForbidden
from switchboard.core.models import Endpoint, EndpointType, PermissionStatus
from switchboard.core.ports import PermissionRecord

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_phone_endpoint_is_never_bridged_to_whatsapp() -> None:
    whatsapp = Endpoint(EndpointType.WHATSAPP, phone_number="15550001111")
    phone = Endpoint(EndpointType.PHONE, phone_number="15550002222")
    with pytest.raises(PstnForbidden, match="never connected to the PSTN"):
        policy.check_not_pstn(whatsapp, phone)
    with pytest.raises(PstnForbidden):
        policy.check_not_pstn(phone)
    policy.check_not_pstn(whatsapp, Endpoint(EndpointType.WEBRTC, identity="agent"))


def test_no_record_means_no_permission() -> None:
    with pytest.raises(NoCallPermission, match="has not granted call permission"):
        policy.check_call_permission(None, "sender", "user", NOW)


def test_temporary_permission_expires_after_seven_days() -> None:
    record = PermissionRecord("sender", "user")
    policy.grant(record, permanent=False, expires_at=None, now=NOW)
    assert record.status is PermissionStatus.TEMPORARY
    policy.check_call_permission(record, "sender", "user", NOW + timedelta(days=6))
    with pytest.raises(NoCallPermission, match="expired"):
        policy.check_call_permission(record, "sender", "user", NOW + timedelta(days=7, seconds=1))


def test_request_limits_one_per_day_two_per_week_reset_by_connected_call() -> None:
    record = PermissionRecord("sender", "user")
    policy.check_request_allowed(record, "sender", "user", NOW)
    policy.record_request(record, NOW)
    with pytest.raises(PolicyViolation, match="1 per 1 day"):
        policy.check_request_allowed(record, "sender", "user", NOW + timedelta(hours=23))
    policy.record_request(record, NOW + timedelta(days=1, hours=1))
    with pytest.raises(PolicyViolation, match="2 per 7 days"):
        policy.check_request_allowed(record, "sender", "user", NOW + timedelta(days=3))
    policy.record_call_outcome(record, connected=True, now=NOW + timedelta(days=3))
    policy.check_request_allowed(record, "sender", "user", NOW + timedelta(days=3))


def test_four_unanswered_calls_revoke_permission() -> None:
    record = PermissionRecord("sender", "user")
    policy.grant(record, permanent=True, expires_at=None, now=NOW)
    for _ in range(3):
        policy.record_call_outcome(record, connected=False, now=NOW)
    assert record.status is PermissionStatus.PERMANENT
    policy.record_call_outcome(record, connected=False, now=NOW)
    assert record.status is PermissionStatus.NO_PERMISSION


def test_connected_call_limit_per_day() -> None:
    record = PermissionRecord("sender", "user")
    policy.grant(record, permanent=True, expires_at=None, now=NOW)
    record.connected_calls = [NOW - timedelta(minutes=i) for i in range(100)]
    with pytest.raises(NoCallPermission, match="100 connected calls"):
        policy.check_call_permission(record, "sender", "user", NOW)
    assert not policy.can_start_call(record, NOW)
    assert policy.can_start_call(record, NOW + timedelta(days=1))
