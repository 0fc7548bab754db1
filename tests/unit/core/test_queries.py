"""Reading calls and dialogs: live calls with their current media, stored ones once ended."""

import pytest

from support.control_rig import CONFIG, OTHER_CONFIG, Rig
from switchboard.core.errors import DialogNotFound
from switchboard.core.models import CallState, Direction


async def test_a_live_call_is_read_with_its_current_media_diagnostics(rig: Rig) -> None:
    call_id = await rig.established_inbound()
    call = await rig.control.get_call(call_id)
    assert call.media["iceState"] == "completed"
    assert call.media["codec"] == "opus/48000/2"
    call.custom_data["changed"] = "by the reader"
    assert "changed" not in (await rig.control.get_call(call_id)).custom_data, "readers get a copy"


async def test_an_ended_call_is_read_from_the_store_with_its_last_media(rig: Rig) -> None:
    call_id = await rig.established_inbound()
    await rig.control.hangup(call_id)
    assert not rig.control.is_live(call_id)
    call = await rig.control.get_call(call_id)
    assert call.state is CallState.FINISHED
    assert call.media["iceState"] == "completed"


async def test_calls_are_listed_newest_first_with_filters(rig: Rig) -> None:
    ended = await rig.established_inbound(caller="447700900001")
    await rig.control.hangup(ended)
    live = await rig.established_inbound(caller="447700900002")
    placed = await rig.outbound()

    calls, total = await rig.control.list_calls()
    assert [c.id for c in calls] == [placed, live, ended]
    assert total == 3
    active, _ = await rig.control.list_calls(active=True)
    assert [c.id for c in active] == [placed, live]
    assert active[1].media["iceState"] == "completed", "live calls are listed with their media"
    inbound, _ = await rig.control.list_calls(direction=Direction.INBOUND, state=CallState.FINISHED)
    assert [c.id for c in inbound] == [ended]
    mine, _ = await rig.control.list_calls(calls_configuration_id=CONFIG.id, size=1, page=1)
    assert [c.id for c in mine] == [live]
    none, total = await rig.control.list_calls(calls_configuration_id=OTHER_CONFIG.id)
    assert (none, total) == ([], 0)


async def test_dialogs_are_read_and_listed(rig: Rig) -> None:
    parent = await rig.established_inbound()
    child = await rig.answered_outbound()
    dialog = await rig.control.connect(parent, child)
    assert (await rig.control.get_dialog(dialog.id)).parent_call_id == parent
    dialogs, total = await rig.control.list_dialogs(active=True)
    assert ([d.id for d in dialogs], total) == ([dialog.id], 1)
    await rig.control.hangup_dialog(dialog.id)
    assert (await rig.control.list_dialogs(active=True)) == ([], 0)
    with pytest.raises(DialogNotFound):
        await rig.control.get_dialog("nope")
