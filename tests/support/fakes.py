"""In-memory fakes of the core's ports: media engine and legs, a channel, repositories, applications,
content sources, and an event log that tests can wait on.

A test drives the far end through these: `FakeLeg.press("12#")` is the peer pressing keys,
`FakeLeg.finish_playback()` the end of a prompt, `FakeChannel.block("hangup", call_id)` a peer that does
not answer. Nothing here touches the network, a database or the wall clock.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from copy import copy
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from switchboard.core.errors import ChannelError
from switchboard.core.events import CallEvent
from switchboard.core.models import (
    Call,
    CallState,
    Dialog,
    DialogState,
    Direction,
    EndpointType,
    HangupDelivery,
    InboundAction,
    InboundTarget,
)
from switchboard.core.ports import ChannelRecord, DialResult, Job, PermissionRecord
from switchboard.errors import MediaError
from switchboard.media.engine import (
    WHATSAPP_LEG,
    AudioSource,
    DtmfReceived,
    DtmfSource,
    LegSpec,
    MediaClosed,
    MediaDiagnostics,
    MediaEventSink,
    MediaFailed,
    MediaLeg,
    MediaLocator,
    MediaMixer,
    MediaStarted,
    PlaybackFinished,
    RecordingFinished,
    RecordingFormat,
)

E = TypeVar("E", bound=CallEvent)

# -- media ----------------------------------------------------------------------------------------------


class FakeLeg:
    """A media leg whose peer is the test: it reports what the core asked and emits the events a test
    tells it to."""

    def __init__(self, leg_id: str, sink: MediaEventSink, spec: LegSpec, engine: FakeEngine) -> None:
        self._id = leg_id
        self.spec = spec
        self._sink = sink
        self._engine = engine
        self.playing: tuple[AudioSource, str] | None = None
        self.played: list[tuple[AudioSource, str, int]] = []
        """Every play asked of the leg: (source, playback id, loop count)."""
        self.recording: tuple[MediaLocator, str] | None = None
        self.sent_dtmf: list[str] = []
        self.inband_dtmf = False
        self.sending = True
        self.closed = False
        self.remote_answer: str | None = None

    @property
    def id(self) -> str:
        return self._id

    async def answer(self, remote_offer: str) -> str:
        return "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=fake answer\r\n"

    async def offer(self) -> str:
        return "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=fake offer\r\n"

    async def accept_answer(self, remote_answer: str) -> None:
        if "bad" in remote_answer:
            raise MediaError("the answer has no audio section")
        self.remote_answer = remote_answer

    async def play(self, source: AudioSource, *, loop_count: int = 1, playback_id: str) -> None:
        if self.playing is not None:
            # A real engine reports the playback it replaces as stopped.
            _, replaced = self.playing
            self._sink(PlaybackFinished(self._id, replaced, 0, False))
        self.playing = (source, playback_id)
        self.played.append((source, playback_id, loop_count))

    async def stop_play(self) -> None:
        if self.playing is not None:
            _, pid = self.playing
            self.playing = None
            self._sink(PlaybackFinished(self._id, pid, 100, False))

    async def send_dtmf(self, digits: str, *, duration_ms: int = 100, gap_ms: int = 60) -> None:
        self.sent_dtmf.append(digits)

    async def start_recording(self, target: MediaLocator, *, fmt: RecordingFormat, recording_id: str) -> None:
        self.recording = (target, recording_id)

    async def stop_recording(self) -> None:
        if self.recording is not None and self._engine.report_recordings_at_once:
            self.finish_recording()

    def set_sending(self, enabled: bool) -> None:
        self.sending = enabled

    def enable_inband_dtmf(self, enabled: bool) -> None:
        self.inband_dtmf = enabled

    def diagnostics(self) -> MediaDiagnostics:
        return MediaDiagnostics(ice_state="completed", dtls_state="connected", codec="opus/48000/2")

    async def close(self) -> None:
        self.closed = True

    # -- what the test makes the peer (or the engine) do --------------------------------------------

    def finish_playback(self, duration_ms: int = 1500) -> None:
        assert self.playing is not None, "nothing is playing"
        _, pid = self.playing
        self.playing = None
        self._sink(PlaybackFinished(self._id, pid, duration_ms, True))

    def press(self, keys: str) -> None:
        for key in keys:
            self._sink(DtmfReceived(self._id, key, 100, DtmfSource.RFC4733))

    def finish_recording(self, duration_ms: int = 2000) -> None:
        """The engine completes the file being recorded (writing it if the engine writes files)."""
        assert self.recording is not None, "nothing is being recorded"
        target, rid = self.recording
        self.recording = None
        size = 0
        if self._engine.write_recordings:
            path = target.path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt ")
            size = path.stat().st_size
        self._sink(RecordingFinished(self._id, rid, target, duration_ms, size))

    def start_media(self) -> None:
        self._sink(MediaStarted(self._id))

    def fail(self, reason: str = "ICE failed: no candidate pair answered") -> None:
        self._sink(MediaFailed(self._id, reason))

    def close_media(self, reason: str = "DTLS close_notify") -> None:
        self._sink(MediaClosed(self._id, reason))


class FakeEngine:
    def __init__(self, *, write_recordings: bool = False, report_recordings_at_once: bool = True) -> None:
        self.legs: dict[str, FakeLeg] = {}
        self.bridged: set[frozenset[str]] = set()
        self.write_recordings = write_recordings
        """Write a small WAV file where a recording goes (a test that downloads recordings needs it)."""
        self.report_recordings_at_once = report_recordings_at_once
        """Report a stopped recording from `stop_recording` itself; otherwise the test calls
        `FakeLeg.finish_recording` (an engine that completes files later)."""

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def create_leg(self, leg_id: str, sink: MediaEventSink, spec: LegSpec) -> MediaLeg:
        leg = FakeLeg(leg_id, sink, spec, self)
        self.legs[leg_id] = leg
        return leg

    async def bridge(self, a: MediaLeg, b: MediaLeg) -> None:
        self.bridged.add(frozenset({a.id, b.id}))

    async def unbridge(self, a: MediaLeg, b: MediaLeg) -> None:
        self.bridged.discard(frozenset({a.id, b.id}))

    async def create_mixer(self, mixer_id: str) -> MediaMixer:
        raise MediaError("the fake engine has no mixer")


# -- content --------------------------------------------------------------------------------------------


class FakeSynthesizer:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.said: list[str] = []
        self.languages: list[str] = []

    async def synthesize(
        self, text: str, *, language: str, speech_rate: float, voice_gender: str | None
    ) -> MediaLocator:
        self.said.append(text)
        self.languages.append(language)
        return MediaLocator.for_path(self.dir / "tts.wav")


class FakeAudioStore:
    def __init__(self) -> None:
        self.files: dict[str, MediaLocator] = {}
        self.recordings: dict[str, MediaLocator] = {}

    async def locate_file(self, file_id: str) -> MediaLocator | None:
        return self.files.get(file_id)

    async def locate_recording(self, file_id: str) -> MediaLocator | None:
        return self.recordings.get(file_id)


class FakeUrlFetcher:
    def __init__(self) -> None:
        self.fetched: list[tuple[str, int | None]] = []

    async def fetch(self, url: str, cache_duration_s: int | None) -> MediaLocator:
        self.fetched.append((url, cache_duration_s))
        return MediaLocator(f"file:///cache/{len(self.fetched)}.wav")


def recording_target(call_id: str, recording_id: str, fmt: RecordingFormat) -> MediaLocator:
    return MediaLocator(f"file:///recordings/{call_id}/{recording_id}.{fmt.value.lower()}")


# -- signalling -----------------------------------------------------------------------------------------

ChannelHook = Callable[[Call, str], Awaitable[None]]


class FakeChannel:
    """A `CallChannel` that records what the core asked (`ops`, as (operation, call id)) and can be told
    to fail an operation or to hold it until the test releases it. Like a real channel it cannot reach a
    call's peer before the peer's call id is known."""

    def __init__(
        self,
        endpoint_type: EndpointType = EndpointType.WHATSAPP,
        *,
        early_media: bool = False,
        sender_id: str = "sender-1",
    ) -> None:
        self.endpoint_type = endpoint_type
        self.early_media = early_media
        self.sender_id = sender_id
        self.ops: list[tuple[str, str]] = []
        self.failures: dict[str, ChannelError] = {}
        self.gates: dict[tuple[str, str | None], asyncio.Event] = {}
        self.unconfirmed_dials = False
        """`dial` returns no peer call id (its answer was lost; the peer names the call later)."""
        self.on_dial: ChannelHook | None = None
        """Run inside `dial` with the new peer call id, before it returns (webhooks that overtake the
        Graph API's answer)."""
        self._peers = itertools.count(1)

    def fail(
        self, op: str, message: str = "the peer refused", *, code: int | None = None, retryable: bool = False
    ) -> None:
        self.failures[op] = ChannelError(message, code=code, retryable=retryable)

    def block(self, op: str, call_id: str | None = None) -> asyncio.Event:
        """Hold `op` on `call_id` (on every call if None) until the returned event is set."""
        gate = self.gates[op, call_id] = asyncio.Event()
        return gate

    def ops_of(self, call_id: str) -> list[str]:
        return [op for op, cid in self.ops if cid == call_id]

    async def _do(self, op: str, call: Call, *, needs_peer: bool = True) -> None:
        self.ops.append((op, call.id))
        gate = self.gates.get((op, call.id)) or self.gates.get((op, None))
        if gate is not None:
            await gate.wait()
        error = self.failures.get(op)
        if error is not None:
            raise error
        if needs_peer and not call.peer_call_id:
            raise ChannelError(f"call {call.id} has no peer call id")

    def leg_spec(self, call: Call) -> LegSpec:
        return WHATSAPP_LEG

    async def prepare_outbound(self, call: Call) -> None:
        call.sender_id = call.sender_id or self.sender_id

    async def pre_answer(self, call: Call, sdp_answer: str) -> None:
        await self._do("pre_answer", call)

    async def answer(self, call: Call, sdp_answer: str) -> None:
        await self._do("answer", call)

    async def reject(self, call: Call) -> None:
        await self._do("reject", call)

    async def hangup(self, call: Call) -> None:
        await self._do("hangup", call)

    async def dial(self, call: Call, sdp_offer: str) -> DialResult:
        await self._do("dial", call, needs_peer=False)
        if self.unconfirmed_dials:
            return DialResult(None)
        peer = f"peer-{next(self._peers)}"
        if self.on_dial is not None:
            await self.on_dial(call, peer)
        return DialResult(peer)


class RingingFakeChannel(FakeChannel):
    """A `FakeChannel` that can also tell an inbound caller the call rings (as SIP's 180)."""

    async def ring(self, call: Call) -> None:
        await self._do("ring", call)


# -- applications ---------------------------------------------------------------------------------------


class FakeApplication:
    """An application that takes calls handed to `action`, except for the targets it refuses."""

    def __init__(self, action: InboundAction, refusals: dict[str | None, str] | None = None) -> None:
        self.action = action
        self.refusals = dict(refusals or {})

    async def refusal(self, target: InboundTarget) -> str | None:
        return self.refusals.get(target.id)


# -- repositories ---------------------------------------------------------------------------------------


def _copy_call(call: Call) -> Call:
    stored = copy(call)
    stored.custom_data = dict(call.custom_data)
    stored.media = dict(call.media)
    stored.targets = list(call.targets)
    return stored


class InMemoryCallRepository:
    """Keeps copies, as a database would: a stored call changes only when it is saved."""

    def __init__(self) -> None:
        self.calls: dict[str, Call] = {}
        self.saved_states: list[tuple[str, CallState]] = []
        self.failing: Exception | None = None
        """Raised by `save` while set (the database failing)."""

    async def save(self, call: Call) -> None:
        if self.failing is not None:
            raise self.failing
        self.calls[call.id] = _copy_call(call)
        self.saved_states.append((call.id, call.state))

    async def get(self, call_id: str) -> Call | None:
        call = self.calls.get(call_id)
        return _copy_call(call) if call else None

    async def find_by_peer_call_id(self, peer_call_id: str) -> Call | None:
        for call in self.calls.values():
            if call.peer_call_id == peer_call_id:
                return _copy_call(call)
        return None

    async def unfinished(self) -> Sequence[Call]:
        return [_copy_call(c) for c in self.calls.values() if not c.state.is_final]

    async def adopt(self, node_id: str) -> Sequence[Call]:
        return []

    async def set_hangup_delivery(self, call_id: str, delivery: HangupDelivery, error: str | None) -> None:
        call = self.calls[call_id]
        call.hangup_delivery, call.hangup_delivery_error = delivery, error

    async def list(
        self,
        *,
        active: bool | None = None,
        calls_configuration_id: str | None = None,
        state: CallState | None = None,
        direction: Direction | None = None,
        page: int = 0,
        size: int = 20,
    ) -> tuple[Sequence[Call], int]:
        found = [
            c
            for c in self.calls.values()
            if (active is None or active is not c.state.is_final)
            and (calls_configuration_id is None or c.calls_configuration_id == calls_configuration_id)
            and (state is None or c.state is state)
            and (direction is None or c.direction is direction)
        ]
        found.reverse()
        return [_copy_call(c) for c in found[page * size : (page + 1) * size]], len(found)


class InMemoryDialogRepository:
    def __init__(self) -> None:
        self.dialogs: dict[str, Dialog] = {}

    async def save(self, dialog: Dialog) -> None:
        self.dialogs[dialog.id] = copy(dialog)

    async def get(self, dialog_id: str) -> Dialog | None:
        dialog = self.dialogs.get(dialog_id)
        return copy(dialog) if dialog else None

    async def list(
        self, *, active: bool | None = None, page: int = 0, size: int = 20
    ) -> tuple[Sequence[Dialog], int]:
        over = (DialogState.FINISHED, DialogState.FAILED)
        found = [d for d in self.dialogs.values() if active is None or active is (d.state not in over)]
        found.reverse()
        return [copy(d) for d in found[page * size : (page + 1) * size]], len(found)


class InMemoryPermissionRepository:
    def __init__(self) -> None:
        self.records: dict[tuple[str, str], PermissionRecord] = {}

    async def get(self, sender_id: str, user: str) -> PermissionRecord | None:
        record = self.records.get((sender_id, user))
        return _copy_permission(record) if record else None

    async def save(self, record: PermissionRecord) -> None:
        self.records[record.sender_id, record.user] = _copy_permission(record)


class InMemoryChannelRecords:
    """`ChannelRecords` in a dict, oldest first as the store answers."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}

    async def list(self, kind: str) -> Sequence[ChannelRecord]:
        return [ChannelRecord(k, key, dict(data)) for (k, key), data in self.items.items() if k == kind]

    async def get(self, kind: str, key: str) -> ChannelRecord | None:
        data = self.items.get((kind, key))
        return ChannelRecord(kind, key, dict(data)) if data is not None else None

    async def save(self, kind: str, key: str, data: Mapping[str, Any]) -> None:
        self.items[kind, key] = dict(data)

    async def delete(self, kind: str, key: str) -> bool:
        return self.items.pop((kind, key), None) is not None


def _copy_permission(record: PermissionRecord) -> PermissionRecord:
    stored = copy(record)
    stored.requests = list(record.requests)
    stored.connected_calls = list(record.connected_calls)
    return stored


# -- events ---------------------------------------------------------------------------------------------


class EventLog:
    """A bus handler that keeps every event; tests wait for the ones they expect."""

    def __init__(self, *, within: float = 2.0) -> None:
        self.events: list[CallEvent] = []
        self._within = within
        self._arrived = asyncio.Condition()

    async def __call__(self, event: CallEvent) -> None:
        async with self._arrived:
            self.events.append(event)
            self._arrived.notify_all()

    def of(self, call_id: str) -> list[CallEvent]:
        return [e for e in self.events if e.call_id == call_id]

    def names(self, call_id: str) -> list[str]:
        return [type(e).__name__ for e in self.of(call_id)]

    def find(self, event_type: type[E], call_id: str | None = None) -> list[E]:
        return [e for e in self.events if type(e) is event_type and (call_id is None or e.call_id == call_id)]

    async def wait_for(self, event_type: type[E], call_id: str | None = None, *, n: int = 1) -> E:
        """The `n`-th event of exactly `event_type` (about `call_id`), once it has been published.

        The time limit only keeps a broken test from hanging; nothing here waits on the wall clock."""
        async with asyncio.timeout(self._within), self._arrived:
            await self._arrived.wait_for(lambda: len(self.find(event_type, call_id)) >= n)
        return self.find(event_type, call_id)[n - 1]


async def settle(rounds: int = 50) -> None:
    """Let every ready task run (executors drain their inboxes) without moving any clock."""
    for _ in range(rounds):
        await asyncio.sleep(0)


class InMemoryJobQueue:
    """`JobQueue` in memory: one job per (kind, key), leased when claimed."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self.jobs: dict[int, dict[str, Any]] = {}

    async def enqueue(self, kind: str, key: str, payload: Mapping[str, Any], *, at: datetime) -> None:
        if any(j["kind"] == kind and j["key"] == key for j in self.jobs.values()):
            return
        job_id = next(self._ids)
        self.jobs[job_id] = {
            "kind": kind,
            "key": key,
            "payload": dict(payload),
            "attempts": 0,
            "due": at,
            "created": at,
            "state": "pending",
            "lease_until": None,
            "error": None,
        }

    async def claim_due(self, now: datetime, *, limit: int, lease: timedelta) -> Sequence[Job]:
        due = [
            (job_id, j)
            for job_id, j in self.jobs.items()
            if j["state"] == "pending"
            and j["due"] <= now
            and (j["lease_until"] is None or j["lease_until"] < now)
        ][:limit]
        for _, j in due:
            j["lease_until"] = now + lease
        return [Job(i, j["kind"], j["key"], j["payload"], j["attempts"], j["created"]) for i, j in due]

    async def next_due(self) -> datetime | None:
        pending = [
            max(j["due"], j["lease_until"]) if j["lease_until"] else j["due"]
            for j in self.jobs.values()
            if j["state"] == "pending"
        ]
        return min(pending) if pending else None

    async def submit(
        self, kind: str, key: str, payload: Mapping[str, Any], *, at: datetime, lease: timedelta
    ) -> int | None:
        if any(j["kind"] == kind and j["key"] == key for j in self.jobs.values()):
            return None
        await self.enqueue(kind, key, payload, at=at)
        job_id = max(self.jobs)
        self.jobs[job_id]["lease_until"] = at + lease
        return job_id

    async def prune(self, older_than: datetime) -> int:
        finished = [i for i, j in self.jobs.items() if j["state"] != "pending"]
        for job_id in finished:
            del self.jobs[job_id]
        return len(finished)

    async def release_leases(self) -> None:
        for job in self.jobs.values():
            job["lease_until"] = None

    async def hand_over(self, job_id: int, node_id: str) -> None:
        self.jobs[job_id].update(state=f"handed to {node_id}", lease_until=None)

    async def complete(self, job_id: int) -> None:
        self.jobs[job_id].update(state="done", lease_until=None)

    async def retry(self, job_id: int, *, at: datetime, error: str) -> None:
        job = self.jobs[job_id]
        job.update(due=at, error=error, lease_until=None, attempts=job["attempts"] + 1)

    async def give_up(self, job_id: int, *, error: str) -> None:
        job = self.jobs[job_id]
        job.update(state="failed", error=error, lease_until=None, attempts=job["attempts"] + 1)

    def states(self) -> list[tuple[str, str, str]]:
        return [(j["kind"], j["key"], j["state"]) for j in self.jobs.values()]
