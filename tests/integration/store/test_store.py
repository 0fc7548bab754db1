"""The store against real databases: SQLite (a temporary file) and PostgreSQL (a throw-away database).

PostgreSQL is expected at postgresql://postgres@127.0.0.1:5432/test (trust auth); each test creates its own
`sb_test_<random>` database and drops it afterwards, so runs are repeatable and never clash.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect, text

from support.databases import KINDS, empty_database
from switchboard.channels.whatsapp.senders import Sender, SenderDirectory
from switchboard.core.models import (
    Call,
    CallError,
    CallState,
    Dialog,
    DialogState,
    Direction,
    Endpoint,
    EndpointType,
    ErrorCode,
    HangupDelivery,
    HangupSource,
    InboundAction,
    InboundTarget,
    PermissionStatus,
)
from switchboard.core.ports import (
    CallRepository,
    ChannelRecords,
    DialogRepository,
    PermissionRecord,
    PermissionRepository,
)
from switchboard.store import (
    Database,
    SqlCallRepository,
    SqlChannelRecords,
    SqlDialogRepository,
    SqlPermissionRepository,
    migrate,
)
from switchboard.store.jobs import SqlJobQueue
from switchboard.store.migrations_runner import target_metadata

CORE_TABLES = {
    "calls",
    "call_logs",
    "dialogs",
    "channel_records",
    "call_permissions",
    "jobs",
    "nodes",
}
CEST = timezone(timedelta(hours=2))


@pytest.fixture(params=KINDS)
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database's URL."""
    async with empty_database(request.param, tmp_path) as database_url:
        yield database_url


@pytest.fixture
async def db(url: str) -> AsyncIterator[Database]:
    await migrate(url)
    database = Database(url)
    try:
        yield database
    finally:
        await database.close()


T0 = datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


def make_call(call_id: str = "call-1", **changes: object) -> Call:
    call = Call(
        id=call_id,
        endpoint=Endpoint(EndpointType.WHATSAPP, phone_number="447700900001", display_name="Ana"),
        direction=Direction.INBOUND,
        from_="447700900001",
        to="15550100000",
        state=CallState.RINGING,
        calls_configuration_id="cfg-1",
        application_id="app-1",
        sender_id="pnid-1",
        peer_call_id=f"wacid.{call_id}",
        custom_data={"orderId": "42", "note": "ünïcödé"},
        parent_call_id="parent-1",
        dialog_id="dialog-1",
        start_time=T0.astimezone(CEST),  # a non-UTC zone: must come back as the same instant, in UTC
        ringing_time=T0 + timedelta(seconds=1),
        media={"codec": "opus", "rtt_ms": 12.5, "packets": {"lost": 0, "received": 100}},
    )
    for name, value in changes.items():
        setattr(call, name, value)
    return call


def finish(call: Call, *, answered: bool = True) -> Call:
    call.state = CallState.FINISHED if answered else CallState.NO_ANSWER
    if answered:
        call.answer_time = T0 + timedelta(seconds=5)
    call.end_time = T0 + timedelta(seconds=65)
    call.hangup_source = HangupSource.ENDPOINT
    call.error = CallError(ErrorCode.NORMAL_HANGUP, "Normal hangup")
    return call


def test_repositories_satisfy_the_core_protocols() -> None:
    db = Database("sqlite+aiosqlite://")
    calls: CallRepository = SqlCallRepository(db)
    dialogs: DialogRepository = SqlDialogRepository(db)
    permissions: PermissionRepository = SqlPermissionRepository(db)
    records: ChannelRecords = SqlChannelRecords(db)
    assert all((calls, dialogs, permissions, records))


async def test_migrate_from_empty_to_head_matches_the_models(url: str) -> None:
    await migrate(url)
    await migrate(url)  # idempotent: already at head
    database = Database(url)
    try:
        async with database.engine.connect() as connection:

            def check(sync: Connection) -> None:
                tables = set(inspect(sync).get_table_names())
                assert tables >= CORE_TABLES
                assert {ix["name"] for ix in inspect(sync).get_indexes("calls")} >= {
                    "ix_calls_peer_call_id",
                    "ix_calls_state",
                    "ix_calls_start_time",
                }
                version = sync.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
                assert version == "0005_routes"
                diff = compare_metadata(MigrationContext.configure(sync), target_metadata())
                assert diff == [], (
                    "the migrations lag the models; add a revision (alembic revision --autogenerate)"
                )

            await connection.run_sync(check)
    finally:
        await database.close()


async def test_call_upsert_round_trip_keeps_every_field(db: Database) -> None:
    calls = SqlCallRepository(db)
    call = make_call()
    await calls.save(call)

    loaded = await calls.get("call-1")
    assert loaded == call
    assert loaded is not None
    for stamp in (loaded.start_time, loaded.ringing_time):
        assert stamp is not None
        assert stamp.tzinfo is not None
        assert stamp.utcoffset() == timedelta(0)
    assert loaded.start_time == T0

    call.state = CallState.ESTABLISHED
    call.answer_time = T0 + timedelta(seconds=5)
    call.media = {"codec": "opus", "mos": 4.3}
    call.custom_data = {"orderId": "43"}
    await calls.save(call)
    assert await calls.get("call-1") == call
    assert await calls.find_by_peer_call_id("wacid.call-1") == call
    assert await calls.find_by_peer_call_id("wacid.nope") is None
    assert await calls.get("nope") is None
    assert await calls.get_log("call-1") is None  # not final yet


async def test_call_with_only_required_fields(db: Database) -> None:
    calls = SqlCallRepository(db)
    call = Call(
        id="bare",
        endpoint=Endpoint(EndpointType.WEBRTC, identity="alice"),
        direction=Direction.OUTBOUND,
        from_="alice",
        to="bob",
    )
    await calls.save(call)
    assert await calls.get("bare") == call


async def test_call_log_is_written_once_at_the_final_state(db: Database) -> None:
    calls = SqlCallRepository(db)
    call = make_call()
    await calls.save(call)
    call.state = CallState.ESTABLISHED
    call.answer_time = T0 + timedelta(seconds=5)
    await calls.save(call)
    assert await calls.history() == ([], 0)

    await calls.save(finish(call))
    log = await calls.get_log("call-1")
    assert log is not None
    assert log.state is CallState.FINISHED
    assert log.duration == 60
    assert log.ring_duration == 5
    assert log.error == CallError(ErrorCode.NORMAL_HANGUP, "Normal hangup")
    assert log.hangup_source is HangupSource.ENDPOINT
    assert log.endpoint == call.endpoint
    assert (log.from_, log.to, log.sender_id) == ("447700900001", "15550100000", "pnid-1")
    assert log.calls_configuration_id == "cfg-1"
    assert log.custom_data == {"orderId": "42", "note": "ünïcödé"}
    assert log.end_time == T0 + timedelta(seconds=65)
    assert log.end_time is not None and log.end_time.tzinfo is not None

    # Saved again after the end (a late media report, say): the call updates, the CDR does not.
    call.media = {"late": True}
    call.error = CallError(ErrorCode.MEDIA_FAILURE, "changed afterwards")
    await calls.save(call)
    assert (await calls.get("call-1")) == call
    assert await calls.get_log("call-1") == log
    logs, total = await calls.history()
    assert total == 1
    assert list(logs) == [log]


async def test_list_pages_newest_first_and_filters_active(db: Database) -> None:
    calls = SqlCallRepository(db)
    for i in range(5):
        call = make_call(f"c{i}", start_time=T0 + timedelta(minutes=i))
        if i % 2 == 0:
            finish(call)
        await calls.save(call)

    everything, total = await calls.list()
    assert total == 5
    assert [c.id for c in everything] == ["c4", "c3", "c2", "c1", "c0"]
    page, total = await calls.list(page=1, size=2)
    assert (total, [c.id for c in page]) == (5, ["c2", "c1"])
    active, total = await calls.list(active=True)
    assert (total, [c.id for c in active]) == (2, ["c3", "c1"])
    ended, total = await calls.list(active=False, size=2)
    assert (total, [c.id for c in ended]) == (3, ["c4", "c2"])
    logs, total = await calls.history(page=0, size=2)
    assert total == 3
    assert len(logs) == 2


async def test_dialog_round_trip_and_list(db: Database) -> None:
    dialogs = SqlDialogRepository(db)
    first = Dialog("d1", "p1", "c1", start_time=T0)
    second = Dialog(
        "d2",
        "p2",
        "c2",
        state=DialogState.FAILED,
        calls_configuration_id="cfg",
        start_time=T0 + timedelta(minutes=1),
        establish_time=T0 + timedelta(minutes=1, seconds=3),
        end_time=T0 + timedelta(minutes=2),
        error=CallError(ErrorCode.MEDIA_FAILURE, "no media"),
    )
    await dialogs.save(first)
    await dialogs.save(second)
    assert await dialogs.get("d2") == second
    first.state = DialogState.ESTABLISHED
    first.establish_time = T0 + timedelta(seconds=2)
    await dialogs.save(first)
    assert await dialogs.get("d1") == first
    assert await dialogs.get("nope") is None
    listed, total = await dialogs.list()
    assert (total, [d.id for d in listed]) == (2, ["d2", "d1"])
    assert [d.id for d in (await dialogs.list(active=True))[0]] == ["d1"]
    assert [d.id for d in (await dialogs.list(active=False))[0]] == ["d2"]


async def test_permission_history_round_trip(db: Database) -> None:
    permissions = SqlPermissionRepository(db)
    assert await permissions.get("pnid-1", "447700900001") is None
    record = PermissionRecord(
        sender_id="pnid-1",
        user="447700900001",
        status=PermissionStatus.TEMPORARY,
        expires_at=T0 + timedelta(days=7),
        requests=[T0, (T0 + timedelta(hours=1)).astimezone(CEST)],
        connected_calls=[T0 + timedelta(minutes=3)],
        unanswered_in_a_row=2,
        updated_at=T0,
    )
    await permissions.save(record)
    loaded = await permissions.get("pnid-1", "447700900001")
    assert loaded == record
    assert loaded is not None
    assert all(t.utcoffset() == timedelta(0) for t in loaded.requests + loaded.connected_calls)

    record.status = PermissionStatus.PERMANENT
    record.expires_at = None
    record.requests = []
    record.unanswered_in_a_row = 0
    await permissions.save(record)
    assert await permissions.get("pnid-1", "447700900001") == record
    assert await permissions.get("pnid-2", "447700900001") is None


def make_sender(pnid: str = "pnid-1", display: str = "+1 555-010-0000") -> Sender:
    return Sender(
        phone_number_id=pnid,
        display_phone_number=display,
        waba_id="waba-1",
        access_token="token",
        app_secret="secret",
        verify_token="verify",
        graph_api_url="http://127.0.0.1:9000",
        inbound=InboundTarget(InboundAction.IVR_SCENARIO, "scn-1"),
    )


async def test_sql_logging_never_shows_parameters(db: Database, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")
    sender = dataclasses.replace(
        make_sender(), access_token="EAAG-7f3a", app_secret="app-secret-91c2", verify_token="verify-5e0d"
    )
    await SenderDirectory(SqlChannelRecords(db)).save(sender)
    assert "INSERT" in caplog.text or "UPDATE" in caplog.text, "SQLAlchemy logged no statement"
    for secret in (sender.access_token, sender.app_secret, sender.verify_token):
        assert secret not in caplog.text


async def test_sender_directory(db: Database) -> None:
    senders = SenderDirectory(SqlChannelRecords(db))
    first = make_sender()
    second = make_sender("pnid-2", "447700900123")
    await senders.save(first)
    await senders.save(second)
    assert await senders.get("pnid-1") == first
    assert await senders.by_display_number("15550100000") == first
    assert await senders.by_display_number("+15550100000") == first
    assert await senders.by_display_number("+447700900123") == second
    assert await senders.by_display_number("+1555") is None
    assert await senders.by_display_number("+") is None
    assert [s.phone_number_id for s in await senders.list()] == ["pnid-1", "pnid-2"]

    moved = Sender(
        **{
            **{name: getattr(first, name) for name in first.__slots__},
            "display_phone_number": "+1 555 010 9999",
            "inbound": InboundTarget(InboundAction.SUBSCRIPTION, "cfg-9"),
        }
    )
    await senders.save(moved)
    assert await senders.get("pnid-1") == moved
    assert await senders.by_display_number("+15550100000") is None
    assert await senders.by_display_number("15550109999") == moved

    assert await senders.delete("pnid-1") is True
    assert await senders.delete("pnid-1") is False
    assert await senders.get("pnid-1") is None
    assert [s.phone_number_id for s in await senders.list()] == ["pnid-2"]


async def test_restart_keeps_finished_calls(url: str) -> None:
    await migrate(url)
    first = Database(url)
    call = finish(make_call())
    try:
        await SqlCallRepository(first).save(call)
    finally:
        await first.close()

    await migrate(url)  # a restarted server migrates again: a no-op at head
    second = Database(url)
    try:
        calls = SqlCallRepository(second)
        assert await calls.get("call-1") == call
        assert (await calls.get_log("call-1")) is not None
        assert (await calls.list(active=False))[1] == 1
    finally:
        await second.close()


async def test_senders_move_to_channel_records_when_upgraded_from_0001(url: str) -> None:
    await migrate(url, "0001")
    db = Database(url)
    now = datetime.now(UTC)
    async with db.session() as s:
        await s.execute(
            text(
                "INSERT INTO senders (phone_number_id, display_phone_number, display_digits, waba_id, "
                "access_token, app_secret, verify_token, graph_api_url, inbound_action, "
                "inbound_calls_configuration_id, created_at, updated_at) VALUES ('pnid-7', '+1 555 0107', "
                "'15550107', 'waba', 'token', 'secret', 'verify', 'http://127.0.0.1:9', 'SUBSCRIPTION', "
                "'app-7', :now, :now)"
            ),
            {"now": now},
        )
    await db.close()
    await migrate(url)
    db = Database(url)
    sender = await SenderDirectory(SqlChannelRecords(db)).get("pnid-7")
    await db.close()
    assert sender is not None and sender.access_token == "token" and sender.app_secret == "secret"
    assert sender.inbound == InboundTarget(InboundAction.SUBSCRIPTION, "app-7")


async def test_unfinished_calls_are_those_of_this_node(db: Database) -> None:
    mine, other = SqlCallRepository(db, "node-a"), SqlCallRepository(db, "node-b")
    await mine.save(make_call("live-a"))
    await mine.save(finish(make_call("done-a")))
    await other.save(make_call("live-b"))
    assert [c.id for c in await mine.unfinished()] == ["live-a"]
    await mine.set_hangup_delivery("done-a", HangupDelivery.FAILED, "Meta never answered")
    stored = await mine.get("done-a")
    assert stored is not None and stored.hangup_delivery is HangupDelivery.FAILED
    assert stored.hangup_delivery_error == "Meta never answered"
    [log] = [entry for entry in (await mine.history())[0] if entry.call_id == "done-a"]
    assert log.state.is_final


async def test_jobs_are_claimed_once_leased_and_finished(db: Database) -> None:
    first, second = SqlJobQueue(db, "node-a"), SqlJobQueue(db, "node-b")
    await first.enqueue("hangup", "call-1", {"reject": True}, at=T0)
    await first.enqueue("hangup", "call-1", {"reject": False}, at=T0)
    await first.enqueue("hangup", "call-2", {}, at=T0 + timedelta(minutes=5))
    assert await first.next_due() == T0
    lease = timedelta(seconds=30)
    [job] = await first.claim_due(T0, limit=10, lease=lease)
    assert (job.key, dict(job.payload), job.attempts) == ("call-1", {"reject": True}, 0)
    assert await second.claim_due(T0 + timedelta(seconds=1), limit=10, lease=lease) == []
    [taken_over] = await second.claim_due(T0 + timedelta(seconds=31), limit=10, lease=lease)
    assert taken_over.id == job.id, "a lease that ran out lets another process take the job"
    await second.retry(job.id, at=T0 + timedelta(minutes=1), error="HTTP 500")
    [again] = await first.claim_due(T0 + timedelta(minutes=1), limit=10, lease=lease)
    assert again.attempts == 1
    await first.complete(again.id)
    assert await first.next_due() == T0 + timedelta(minutes=5)
    [other] = await first.claim_due(T0 + timedelta(minutes=5), limit=10, lease=lease)
    await first.give_up(other.id, error="refused")
    assert await first.next_due() is None
