"""The emulated WhatsApp user and its calls.

`CallBase` is the call as Meta sees it (state, Graph actions, webhooks); `UserCall` adds a real
aiortc peer that behaves like Meta's edge (reference §1 media roles, §3): ICE-lite in its SDP and
ICE-controlled in fact, DTLS `actpass` offers / `passive` answers, Opus 48 kHz on PT 111 and
telephone-event/8000 on PT 126.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.rtcrtpsender import RTCRtpSender

from . import _sdp
from ._media import PCM, AudioOut, Recorder, read_audio_file, restrict_host_addresses, send_dtmf
from ._state import (
    BusinessNumber,
    EmulatorState,
    GraphError,
    invalid_parameter,
    new_call_id,
    new_message_id,
)
from ._webhooks import calls_value, contact, messages_value, statuses_value

log = logging.getLogger(__name__)

Direction = Literal["USER_INITIATED", "BUSINESS_INITIATED"]


@dataclass
class AnswerPolicy:
    """How the user answers a business-initiated call: `accept` or `decline` after `delay`
    seconds of ringing, or `no_answer` (rings until the emulator's ring timeout)."""

    mode: Literal["accept", "decline", "no_answer"] = "accept"
    delay: float = 1.0


@dataclass
class PermissionPolicy:
    """How the user replies to a call permission request: `ignore` (the test replies with
    `WhatsAppUser.reply_permission`), `accept` (temporary, 7 days), `accept_permanent` or `reject`."""

    mode: Literal["ignore", "accept", "accept_permanent", "reject"] = "ignore"
    delay: float = 0.2


def validate_answer_sdp(sdp: Any) -> str:
    if not isinstance(sdp, str) or not sdp.startswith("v=0"):
        raise invalid_parameter("session.sdp must be an RFC 8866 SDP")
    if "\r\n" not in sdp or "\n" in sdp.replace("\r\n", ""):
        raise invalid_parameter("SDP lines must end with \\r\\n")
    if "m=audio " not in sdp or "a=fingerprint:" not in sdp:
        raise invalid_parameter("SDP needs an audio m-line and a=fingerprint")
    return sdp


class CallBase:
    """A call as Meta tracks it. Subclasses provide the media peer (`_apply_answer`, `_close_media`).

    States, in order of appearance: RINGING, PRE_ACCEPTED, ACCEPTED, REJECTED, TERMINATED.
    """

    def __init__(
        self,
        state: EmulatorState,
        number: BusinessNumber,
        user: WhatsAppUser,
        direction: Direction,
        *,
        call_id: str | None = None,
        biz_opaque_callback_data: str | None = None,
    ) -> None:
        self.emulator = state
        self.number = number
        self.user = user
        self.direction: Direction = direction
        self.call_id = call_id or new_call_id()
        self.phone_number_id = number.phone_number_id
        self.biz_opaque_callback_data = biz_opaque_callback_data
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.states: list[str] = []
        self.end_status: str | None = None
        self.start_time: int | None = None
        self.end_time: int | None = None
        self.pre_accept_sdp: str | None = None
        self.answer_sdp: str | None = None
        self._state_events: dict[str, asyncio.Event] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        state.calls[self.call_id] = self

    # --- state ------------------------------------------------------------------------------

    @property
    def state(self) -> str | None:
        return self.states[-1] if self.states else None

    @property
    def ended(self) -> bool:
        return "TERMINATED" in self.states

    @property
    def answered(self) -> bool:
        return self.start_time is not None

    def _event(self, state: str) -> asyncio.Event:
        return self._state_events.setdefault(state, asyncio.Event())

    def _set_state(self, state: str) -> None:
        self.states.append(state)
        self._event(state).set()

    async def wait_state(self, state: str, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """Wait until the call has reached `state` (it may have moved on since)."""
        await asyncio.wait_for(self._event(state).wait(), timeout)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def record_action(self, action: str, body: dict[str, Any]) -> None:
        self.events.append((action, body))

    # --- webhooks ---------------------------------------------------------------------------

    def _now(self) -> int:
        return int(self.emulator.clock())

    def _call_entry(self, event: str, **fields: Any) -> dict[str, Any]:
        if self.direction == "USER_INITIATED":
            to, from_ = self.number.display_phone_number, self.user.wa_id
        else:
            to, from_ = self.user.wa_id, self.number.display_phone_number
        entry: dict[str, Any] = {"id": self.call_id, "to": to, "from": from_, "event": event}
        entry["timestamp"] = str(self._now())
        entry["direction"] = self.direction
        entry.update(fields)
        return entry

    async def _send_calls(self, entry: dict[str, Any], **extra: Any) -> bool:
        value = calls_value(self.number, [entry], contacts=[self.user.contact()], **extra)
        return await self.emulator.webhooks.send(self.number, "calls", value)

    async def _send_status(self, status: str) -> bool:
        entry: dict[str, Any] = {
            "id": self.call_id,
            "timestamp": str(self._now()),
            "type": "call",
            "status": status,
            "recipient_id": self.user.wa_id,
        }
        if self.biz_opaque_callback_data is not None:
            entry["biz_opaque_callback_data"] = self.biz_opaque_callback_data
        return await self.emulator.webhooks.send(self.number, "calls", statuses_value(self.number, [entry]))

    def _terminate_entry(self, status: str) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        if self.biz_opaque_callback_data is not None:
            fields["biz_opaque_callback_data"] = self.biz_opaque_callback_data
        fields["status"] = status
        if self.start_time is not None and self.end_time is not None:
            fields["start_time"] = str(self.start_time)
            fields["end_time"] = str(self.end_time)
            fields["duration"] = self.end_time - self.start_time
        return self._call_entry("terminate", **fields)

    async def _end(
        self, status: str, *, errors: Sequence[dict[str, Any]] = (), wait_webhook: bool = True
    ) -> None:
        """End the call once: close media, then send the terminate webhook."""
        if self.ended:
            return
        self.end_status = status
        self.end_time = self._now()
        self._set_state("TERMINATED")
        await self._close_media()
        coro = self._send_calls(self._terminate_entry(status), errors=errors)
        if wait_webhook:
            await coro
        else:
            self.emulator.webhooks.spawn(coro)
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()

    # --- Graph API actions (raise GraphError) -----------------------------------------------

    def _require_user_initiated(self, action: str) -> None:
        if self.direction != "USER_INITIATED":
            raise invalid_parameter(f"{action} applies to user-initiated calls only")
        if self.ended:
            raise invalid_parameter(f"call {self.call_id} has already ended")

    async def graph_pre_accept(self, sdp: str) -> None:
        self._require_user_initiated("pre_accept")
        if self.answered:
            raise invalid_parameter("call already accepted")
        sdp = validate_answer_sdp(sdp)
        if self.pre_accept_sdp is not None:
            if sdp != self.pre_accept_sdp:
                raise invalid_parameter("SDP differs from the earlier pre_accept")
            return
        await self._apply_answer(sdp)
        self.pre_accept_sdp = sdp
        self._set_state("PRE_ACCEPTED")

    async def graph_accept(self, sdp: str, biz_opaque_callback_data: str | None) -> None:
        self._require_user_initiated("accept")
        if self.answered:
            raise invalid_parameter("call already accepted")
        sdp = validate_answer_sdp(sdp)
        if self.pre_accept_sdp is not None and sdp != self.pre_accept_sdp:
            raise invalid_parameter("accept SDP must equal the pre_accept SDP")
        if self.pre_accept_sdp is None:
            await self._apply_answer(sdp)
        if biz_opaque_callback_data is not None:
            self.biz_opaque_callback_data = biz_opaque_callback_data
        self.start_time = self._now()
        self._set_state("ACCEPTED")

    async def graph_reject(self) -> None:
        self._require_user_initiated("reject")
        if self.answered:
            raise invalid_parameter("call already accepted; use terminate")
        self._set_state("REJECTED")
        await self._end("FAILED", wait_webhook=False)

    async def graph_terminate(self) -> None:
        if self.ended:
            raise invalid_parameter(f"call {self.call_id} has already ended")
        await self._end("COMPLETED" if self.answered else "FAILED", wait_webhook=False)

    # --- media, provided by subclasses ------------------------------------------------------

    async def _apply_answer(self, sdp: str) -> None:
        raise NotImplementedError

    async def _close_media(self) -> None:
        raise NotImplementedError

    # --- the user's side --------------------------------------------------------------------

    async def hang_up(self) -> None:
        """The user hangs up: media closes and the terminate webhook (COMPLETED) is delivered."""
        await self._end("COMPLETED" if self.answered else "FAILED")

    async def _accept_timer(self) -> None:
        await asyncio.sleep(self.emulator.accept_timeout)
        if not self.answered and not self.ended:
            await self._end(
                "FAILED",
                errors=[{"code": 138007, "message": "Call connect timeout"}],
            )


class UserCall(CallBase):
    """A call whose user side is an aiortc peer made to look like Meta's edge."""

    def __init__(
        self,
        state: EmulatorState,
        number: BusinessNumber,
        user: WhatsAppUser,
        direction: Direction,
        **kwargs: Any,
    ) -> None:
        super().__init__(state, number, user, direction, **kwargs)
        self.audio = AudioOut()
        self.recording_path: Path = state.recording_dir / f"{self.call_id}.wav"
        self.recorder = Recorder(self.recording_path)
        self.pc = RTCPeerConnection()
        self._connected = asyncio.Event()
        self._failed = asyncio.Event()
        self.offer_sdp: str | None = None
        self.pc.on("track", self.recorder.start)
        self.pc.on("connectionstatechange", self._on_connection_state)
        self.transceiver = self.pc.addTransceiver(self.audio, direction="sendrecv")
        opus = [c for c in RTCRtpSender.getCapabilities("audio").codecs if c.mimeType == "audio/opus"]
        self.transceiver.setCodecPreferences(opus)

    def _on_connection_state(self) -> None:
        if self.pc.connectionState == "connected":
            self._connected.set()
        elif self.pc.connectionState in ("failed", "closed"):
            self._failed.set()

    async def wait_connected(self, timeout: float = 20.0) -> None:  # noqa: ASYNC109
        """Wait for ICE + DTLS to be up; raises ConnectionError if the peer fails or closes."""
        done, _ = await asyncio.wait(
            [asyncio.ensure_future(e.wait()) for e in (self._connected, self._failed)],
            timeout=timeout,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if not self._connected.is_set():
            for task in done:
                task.cancel()
            raise ConnectionError(f"call {self.call_id}: media not connected ({self.pc.connectionState})")

    def _ice_connection(self) -> Any:
        return self.transceiver.sender.transport.transport._connection

    async def create_offer(self) -> str:
        """Meta's offer for a user-initiated call; the local aiortc agent is ICE-controlled."""
        with restrict_host_addresses(self.emulator.media_addresses):
            await self.pc.setLocalDescription(await self.pc.createOffer())
        # aiortc makes an offerer ICE-controlling; Meta's edge is ICE-lite, always controlled.
        self._ice_connection().ice_controlling = False
        self.offer_sdp = _sdp.meta_offer(self.pc.localDescription.sdp)
        return self.offer_sdp

    async def _apply_answer(self, sdp: str) -> None:
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        except (ValueError, KeyError, IndexError) as exc:
            raise invalid_parameter(f"invalid SDP answer: {exc}") from exc
        self.answer_sdp = sdp

    async def apply_business_offer(self, sdp: str) -> None:
        """Business-initiated: take the business's offer (validated now, answered on accept)."""
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        except (ValueError, KeyError, IndexError) as exc:
            raise invalid_parameter(f"invalid SDP offer: {exc}") from exc
        self.offer_sdp = sdp

    async def create_answer(self) -> str:
        """Meta's answer to a business offer: DTLS server (`a=setup:passive`), ICE-lite, controlled."""
        assert self.offer_sdp is not None
        self.transceiver.receiver.transport._set_role("server")
        with restrict_host_addresses(self.emulator.media_addresses):
            await self.pc.setLocalDescription(await self.pc.createAnswer())
        self._ice_connection().ice_controlling = False
        self.answer_sdp = _sdp.meta_answer(self.pc.localDescription.sdp, self.offer_sdp)
        return self.answer_sdp

    async def _close_media(self) -> None:
        self.audio.stop()
        await self.recorder.stop()
        await self.pc.close()

    # --- what the user does -----------------------------------------------------------------

    def play_tone(self, frequency: float, amplitude: float = 0.3) -> None:
        self.audio.play_tone(frequency, amplitude)

    def play_file(self, path: str | Path, *, loop: bool = False) -> None:
        self.audio.play_pcm(read_audio_file(path), loop=loop)

    def play_pcm(self, pcm: PCM, *, loop: bool = False) -> None:
        self.audio.play_pcm(pcm, loop=loop)

    def play_silence(self) -> None:
        self.audio.play_silence()

    def heard_pcm(self) -> PCM:
        """Everything heard so far, 48 kHz mono int16."""
        return self.recorder.pcm()

    async def press(self, digits: str, *, duration_ms: int = 100, gap_ms: int = 100) -> None:
        """Press keys as RFC 4733 telephone-events (PT 126, 8000 Hz clock)."""
        await self.wait_connected()
        await send_dtmf(self.transceiver.sender, digits, duration_ms=duration_ms, gap_ms=gap_ms)

    # --- flows ------------------------------------------------------------------------------

    async def start_user_initiated(
        self, *, deeplink_payload: str | None = None, cta_payload: str | None = None
    ) -> None:
        offer = await self.create_offer()
        fields: dict[str, Any] = {}
        if deeplink_payload is not None:
            fields["deeplink_payload"] = deeplink_payload
        if cta_payload is not None:
            fields["cta_payload"] = cta_payload
        fields["session"] = {"sdp_type": "offer", "sdp": offer}
        self._set_state("RINGING")
        self._spawn(self._accept_timer())
        await self._send_calls(self._call_entry("connect", **fields))

    async def ring(self) -> None:
        """Business-initiated: ring, then answer as the user's `AnswerPolicy` says."""
        policy = self.user.answer
        self._set_state("RINGING")
        await self._send_status("RINGING")
        if policy.mode == "no_answer":
            await asyncio.sleep(self.emulator.ring_timeout)
            await self._end("FAILED")
            return
        await asyncio.sleep(policy.delay)
        if self.ended:
            return
        if policy.mode == "decline":
            self._set_state("REJECTED")
            await self._send_status("REJECTED")
            await self._end("FAILED")
            return
        answer = await self.create_answer()
        if self.user.auto_tone is not None:
            self.play_tone(self.user.auto_tone)
        await self._send_calls(self._call_entry("connect", session={"sdp_type": "answer", "sdp": answer}))
        try:
            await self.wait_connected(self.emulator.connect_timeout)
        except ConnectionError:
            await self._end("FAILED", errors=[{"code": 138019, "message": "Call setup failed"}])
            return
        self.start_time = self._now()
        permission = self.emulator.permission(self.phone_number_id, self.user.wa_id)
        permission.connected_call_times.append(self.emulator.clock())
        permission.request_times.clear()  # any connected call resets the request limits
        self._set_state("ACCEPTED")
        await self._send_status("ACCEPTED")


class WhatsAppUser:
    """A scripted WhatsApp user: places calls, answers business calls, replies to permission requests."""

    def __init__(self, state: EmulatorState, wa_id: str, name: str, *, username: str | None = None) -> None:
        self.emulator = state
        self.wa_id = wa_id
        self.name = name
        self.username = username
        self.answer = AnswerPolicy()
        self.permission_reply = PermissionPolicy()
        self.auto_tone: float | None = None
        self.calls: list[UserCall] = []
        self.incoming: asyncio.Queue[UserCall] = asyncio.Queue()
        self.permission_requests: list[tuple[str, dict[str, Any]]] = []
        state.users[wa_id] = self

    def contact(self) -> dict[str, Any]:
        return contact(self.wa_id, self.name, username=self.username)

    def _number(self, phone_number_id: str) -> BusinessNumber:
        try:
            return self.emulator.numbers[phone_number_id]
        except KeyError:
            raise ValueError(f"unknown business number {phone_number_id}") from None

    async def call(
        self,
        phone_number_id: str,
        *,
        deeplink_payload: str | None = None,
        cta_payload: str | None = None,
    ) -> UserCall:
        """Call a business: sends the `connect` webhook with Meta's SDP offer and returns at once."""
        call = UserCall(self.emulator, self._number(phone_number_id), self, "USER_INITIATED")
        self.calls.append(call)
        await call.start_user_initiated(deeplink_payload=deeplink_payload, cta_payload=cta_payload)
        return call

    async def next_incoming(self, timeout: float = 30.0) -> UserCall:  # noqa: ASYNC109
        return await asyncio.wait_for(self.incoming.get(), timeout)

    async def incoming_call(
        self, number: BusinessNumber, offer_sdp: str, biz_opaque_callback_data: str | None
    ) -> UserCall:
        """Called by the Graph API on `connect`; raises GraphError for a bad offer."""
        call = UserCall(
            self.emulator,
            number,
            self,
            "BUSINESS_INITIATED",
            biz_opaque_callback_data=biz_opaque_callback_data,
        )
        try:
            await call.apply_business_offer(offer_sdp)
        except GraphError:
            del self.emulator.calls[call.call_id]
            await call.pc.close()
            raise
        self.calls.append(call)
        self.incoming.put_nowait(call)
        call._spawn(call.ring())
        return call

    def permission_requested(self, number: BusinessNumber, message_id: str, body: dict[str, Any]) -> None:
        """Called by the Graph API when a call permission request reaches the user."""
        self.permission_requests.append((number.phone_number_id, body))
        policy = self.permission_reply
        if policy.mode == "ignore":
            return

        async def reply() -> None:
            await asyncio.sleep(policy.delay)
            await self.reply_permission(
                number.phone_number_id,
                accept=policy.mode != "reject",
                permanent=policy.mode == "accept_permanent",
            )

        self.emulator.webhooks.spawn(reply())

    async def reply_permission(
        self,
        phone_number_id: str,
        *,
        accept: bool = True,
        permanent: bool = False,
        response_source: Literal["user_action", "automatic"] = "user_action",
    ) -> bool:
        """Answer the call permission request: updates the permission and delivers the
        `call_permission_reply` messages webhook. Returns whether the delivery got a 2xx."""
        number = self._number(phone_number_id)
        permission = self.emulator.permission(phone_number_id, self.wa_id)
        now = self.emulator.clock()
        reply: dict[str, Any] = {"response": "accept" if accept else "reject"}
        if accept:
            permission.grant(permanent=permanent, now=now)
            reply["is_permanent"] = permanent
            if not permanent:
                reply["expiration_timestamp"] = str(permission.expiration_time)
        else:
            permission.revoke()
        reply["response_source"] = response_source
        message: dict[str, Any] = {"from": self.wa_id, "id": new_message_id()}
        if permission.last_request_message_id is not None:
            message["context"] = {
                "from": number.display_phone_number,
                "id": permission.last_request_message_id,
            }
        message["timestamp"] = str(int(now))
        message["type"] = "interactive"
        message["interactive"] = {"type": "call_permission_reply", "call_permission_reply": reply}
        value = messages_value(number, [self.contact()], [message])
        return await self.emulator.webhooks.send(number, "messages", value)


async def close_call(call: CallBase) -> None:
    """Stop a call's tasks and media without any webhook (emulator shutdown)."""
    for task in list(call._tasks):
        task.cancel()
    with contextlib.suppress(Exception):
        if not call.ended:
            call.states.append("TERMINATED")
            await call._close_media()
