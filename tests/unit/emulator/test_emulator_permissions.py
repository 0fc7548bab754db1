from __future__ import annotations

from switchboard.emulator import GraphError, PermissionRecord
from switchboard.emulator._state import DAY, Faults

NOW = 1_745_000_000.0


def test_permission_document_and_request_limits() -> None:
    record = PermissionRecord()
    document = record.document(NOW)
    assert document["messaging_product"] == "whatsapp"
    assert document["permission"] == {"status": "no_permission"}
    request, start_call = document["actions"]
    assert request["action_name"] == "send_call_permission_request"
    assert request["can_perform_action"] is True
    assert [limit["time_period"] for limit in request["limits"]] == ["PT24H", "P7D"]
    assert start_call["action_name"] == "start_call" and start_call["can_perform_action"] is False

    record.request_times.append(NOW)
    assert not record.can_request(NOW + 3600)
    assert record.can_request(NOW + DAY + 1)
    record.request_times.append(NOW + DAY + 1)
    assert not record.can_request(NOW + 3 * DAY)  # 2 per 7 days

    record.grant(now=NOW)
    document = record.document(NOW)
    assert document["permission"] == {"status": "temporary", "expiration_time": int(NOW) + 7 * DAY}
    assert record.can_call(NOW)
    assert record.current_status(NOW + 7 * DAY + 1) == "no_permission"
    record.grant(permanent=True)
    assert record.document(NOW)["permission"] == {"status": "permanent"}


def test_faults_queue_per_action() -> None:
    faults = Faults()
    faults.fail_next("accept", status=503, count=2)
    faults.hang_next("terminate", 1.5)
    first, second = faults.take("accept"), faults.take("accept")
    assert first is not None and second is not None and first.status == 503
    assert faults.take("accept") is None
    hang = faults.take("terminate")
    assert hang is not None and hang.kind == "hang" and hang.seconds == 1.5


def test_graph_error_shape() -> None:
    body = GraphError(400, 138006, "No permission", details="x").body()["error"]
    assert set(body) == {"message", "type", "code", "error_subcode", "fbtrace_id", "error_data"}
    assert body["code"] == 138006 and body["message"] == "(#138006) No permission"
    assert body["error_data"] == {"messaging_product": "whatsapp", "details": "x"}
