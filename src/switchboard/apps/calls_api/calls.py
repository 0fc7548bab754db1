"""Calls, call actions and dialogs (`/calls/1/calls`, `/calls/1/dialogs`): REST over `CallControl`.

Every action is one `CallControl` call; its errors (unknown call → 404, wrong state → 400 naming the
state, policy → 403) are rendered in Infobip's error shape by the installed handlers.
"""

from __future__ import annotations

import functools
from typing import Annotated

from fastapi import APIRouter, Body, Query

from switchboard.apps.calls_api.context import Context, PageParam, SizeParam
from switchboard.apps.calls_api.mapping import call_log_model, call_model, dialog_model
from switchboard.apps.calls_api.schemas import (
    ActionResponse,
    ActionStatus,
    AnswerRequest,
    ApplicationTransferRequest,
    CallLogModel,
    CallLogPage,
    CallModel,
    CallPage,
    CallRequestModel,
    DialogModel,
    DialogPage,
    DialogRequest,
    DialogWithExistingCallRequest,
    DtmfCaptureRequest,
    DtmfSendRequest,
    EndpointModel,
    HangupRequest,
    Paging,
    PlayContent,
    PlayRequest,
    PreAnswerRequest,
    RecordingRequest,
    SayRequest,
)
from switchboard.core.content import (
    Content,
    FileContent,
    RecordingContent,
    SpeechContent,
    UrlContent,
)
from switchboard.core.control import CallRequest
from switchboard.core.control import RecordingRequest as CoreRecordingRequest
from switchboard.core.errors import SwitchboardError
from switchboard.core.models import (
    Call,
    CallState,
    Dialog,
    Direction,
    Endpoint,
    EndpointType,
    ErrorCode,
    InboundAction,
    InboundTarget,
)
from switchboard.httpapi.errors import ApiError
from switchboard.media.engine import RecordingFormat

ALL_DIGITS = "0123456789*#ABCD"


def core_endpoint(model: EndpointModel) -> Endpoint:
    return Endpoint(
        type=model.type,
        phone_number=model.phone_number,
        username=model.username,
        sip_trunk_id=model.sip_trunk_id,
        identity=model.identity,
        display_name=model.display_name,
    )


def core_content(content: PlayContent) -> Content:
    match content.type:
        case "TEXT":
            gender = content.preferences.voice_gender if content.preferences else None
            return SpeechContent(
                content.text or "",
                language=content.language or "en",
                speech_rate=content.speech_rate or 1.0,
                voice_gender=gender.lower() if gender else None,
            )
        case "URL":
            return UrlContent(content.file_url or "", content.cache_duration)
        case "FILE":
            return FileContent(content.file_id or "")
        case _:
            return RecordingContent(content.file_id or "")


def build_router(ctx: Context) -> APIRouter:
    router = APIRouter()
    action = functools.partial(
        router.post,
        response_model=ActionResponse,
        response_model_exclude_none=True,
        tags=["call actions"],
    )
    """A call action route: answers Infobip's `CallsActionResponse`."""
    control = ctx.control

    async def require_configuration(config_id: str, field: str) -> None:
        if not await ctx.configurations.exists(config_id):
            raise ApiError(400, f"{field}: calls configuration {config_id!r} does not exist")

    # -- calls ---------------------------------------------------------------------------------------

    @router.post(
        "/calls/1/calls",
        status_code=201,
        response_model=CallModel,
        response_model_exclude_none=True,
        tags=["calls"],
        summary="Create an outbound call",
        description="WHATSAPP endpoints need `from` = a WhatsApp sender number of this server and the "
        "user's call permission; PHONE endpoints are refused (403): WhatsApp calls never reach the PSTN.",
    )
    async def create_call(body: CallRequestModel) -> CallModel:
        await require_configuration(body.calls_configuration_id, "callsConfigurationId")
        if body.endpoint.type is EndpointType.WHATSAPP and not body.from_:
            raise ApiError(400, "from: the WhatsApp sender number to call from is required")
        call = await control.create_call(
            CallRequest(
                endpoint=core_endpoint(body.endpoint),
                from_=body.from_ or "",
                calls_configuration_id=body.calls_configuration_id,
                application_id=body.platform.application_id if body.platform else None,
                connect_timeout_s=body.connect_timeout or 60,
                max_duration_s=body.max_duration,
                record=(
                    CoreRecordingRequest(custom_data=dict(body.recording.custom_data or {}))
                    if body.recording
                    else None
                ),
                custom_data=dict(body.custom_data or {}),
                parent_call_id=body.parent_call_id,
                external_id=body.external_id,
            )
        )
        return call_model(call)

    @router.get(
        "/calls/1/calls",
        response_model=CallPage,
        response_model_exclude_none=True,
        tags=["calls"],
        summary="List active calls",
    )
    async def list_calls(
        page: PageParam = 0,
        size: SizeParam = 20,
        calls_configuration_id: Annotated[str | None, Query(alias="callsConfigurationId")] = None,
        state: CallState | None = None,
        status: Annotated[CallState | None, Query(description="Alias of state (the SDK's name).")] = None,
        direction: Direction | None = None,
    ) -> CallPage:
        calls, total = await control.list_calls(
            active=True,
            calls_configuration_id=calls_configuration_id,
            state=state or status,
            direction=direction,
            page=page,
            size=size,
        )
        return CallPage(results=[call_model(c) for c in calls], paging=Paging.of(page, size, total))

    @router.get(
        "/calls/1/calls/history",
        response_model=CallLogPage,
        response_model_exclude_none=True,
        tags=["calls"],
        summary="List finished calls",
    )
    async def calls_history(
        page: PageParam = 0,
        size: SizeParam = 20,
        calls_configuration_id: Annotated[str | None, Query(alias="callsConfigurationId")] = None,
        state: CallState | None = None,
        direction: Direction | None = None,
    ) -> CallLogPage:
        calls, total = await control.list_calls(
            active=False,
            calls_configuration_id=calls_configuration_id,
            state=state,
            direction=direction,
            page=page,
            size=size,
        )
        return CallLogPage(results=[call_log_model(c) for c in calls], paging=Paging.of(page, size, total))

    @router.get(
        "/calls/1/calls/{callId}",
        response_model=CallModel,
        response_model_exclude_none=True,
        tags=["calls"],
        summary="Get a call (live or finished)",
    )
    async def get_call(callId: str) -> CallModel:
        return call_model(await control.get_call(callId))

    @router.get(
        "/calls/1/calls/{callId}/history",
        response_model=CallLogModel,
        response_model_exclude_none=True,
        tags=["calls"],
        summary="Get a call's log",
    )
    async def get_call_history(callId: str) -> CallLogModel:
        return call_log_model(await control.get_call(callId))

    # -- actions -------------------------------------------------------------------------------------

    @action(
        "/calls/1/calls/{callId}/answer",
        summary="Answer an inbound call",
    )
    async def answer(
        callId: str,
        body: Annotated[AnswerRequest | None, Body()] = None,
    ) -> ActionResponse:
        await control.answer(callId)
        if body is not None and body.recording is not None:
            custom = dict(body.recording.custom_data or {})
            rec_id = await control.start_recording(callId, custom_data=custom)
            return ActionResponse(id=rec_id)
        return ActionResponse()

    @action(
        "/calls/1/calls/{callId}/pre-answer",
        summary="Pre-answer an inbound call (early media)",
    )
    async def pre_answer(
        callId: str,
        body: Annotated[PreAnswerRequest | None, Body()] = None,
    ) -> ActionResponse:
        await control.pre_answer(callId)
        return ActionResponse()

    @action(
        "/calls/1/calls/{callId}/send-ringing",
        summary="Tell the caller the call is ringing",
    )
    async def send_ringing(callId: str) -> ActionResponse:
        await control.send_ringing(callId)
        return ActionResponse()

    @router.post(
        "/calls/1/calls/{callId}/hangup",
        response_model=CallModel,
        response_model_exclude_none=True,
        tags=["call actions"],
        summary="Hang up a call",
    )
    async def hangup(
        callId: str,
        body: Annotated[HangupRequest | None, Body()] = None,
    ) -> CallModel:
        code = ErrorCode.NORMAL_HANGUP
        if body is not None and body.error_code:
            try:
                code = ErrorCode(body.error_code)
            except ValueError:
                names = ", ".join(c.value for c in ErrorCode)
                raise ApiError(400, f"errorCode: {body.error_code!r} is not one of {names}") from None
        return call_model(await control.hangup(callId, code=code))

    async def start_content(
        call_id: str,
        content: PlayContent,
        *,
        loop_count: int,
        stop_on: str | None,
        custom_data: dict[str, str] | None,
    ) -> str:
        return await control.play(
            call_id,
            core_content(content),
            loop_count=loop_count,
            stop_on_terminator=stop_on,
            custom_data=custom_data,
        )

    @action(
        "/calls/1/calls/{callId}/play",
        summary="Play audio (uploaded file, URL, text or a recording); PLAY_FINISHED reports the end",
    )
    async def play(callId: str, body: PlayRequest) -> ActionResponse:
        op = await start_content(
            callId,
            body.content,
            loop_count=body.loop_count or 1,
            stop_on=body.stop_on.terminator if body.stop_on else None,
            custom_data=body.custom_data,
        )
        return ActionResponse(id=op)

    @action(
        "/calls/1/calls/{callId}/stop-play",
        summary="Stop playing",
    )
    async def stop_play(callId: str) -> ActionResponse:
        await control.stop_play(callId)
        return ActionResponse()

    @action(
        "/calls/1/calls/{callId}/say",
        summary="Say text (text to speech); SAY_FINISHED reports the end",
    )
    async def say(callId: str, body: SayRequest) -> ActionResponse:
        gender = body.preferences.voice_gender if body.preferences else None
        op = await control.say(
            callId,
            body.text,
            language=body.language,
            speech_rate=body.speech_rate or 1.0,
            voice_gender=gender.lower() if gender else None,
            loop_count=body.loop_count or 1,
            stop_on_terminator=body.stop_on.terminator if body.stop_on else None,
            custom_data=body.custom_data,
        )
        return ActionResponse(id=op)

    @action(
        "/calls/1/calls/{callId}/application-transfer",
        summary="Hand the call to another calls configuration's application",
        description="The destination's subscriptions receive APPLICATION_TRANSFER_REQUESTED with a "
        "`transferId`; until it accepts within `timeout` seconds the call stays with this application.",
    )
    async def application_transfer(callId: str, body: ApplicationTransferRequest) -> ActionResponse:
        await require_configuration(
            body.destination_calls_configuration_id, "destinationCallsConfigurationId"
        )
        transfer_id = await control.transfer(
            callId,
            InboundTarget(InboundAction.SUBSCRIPTION, body.destination_calls_configuration_id),
            timeout_s=body.timeout,
            custom_data=dict(body.custom_data or {}),
        )
        return ActionResponse(id=transfer_id)

    @action(
        "/calls/1/calls/{callId}/application-transfer/{transferId}/accept",
        summary="Accept an application transfer (the receiving application)",
    )
    async def application_transfer_accept(callId: str, transferId: str) -> ActionResponse:
        await control.accept_transfer(callId, transferId)
        return ActionResponse(status=ActionStatus.COMPLETED)

    @action(
        "/calls/1/calls/{callId}/application-transfer/{transferId}/reject",
        summary="Reject an application transfer (the receiving application)",
    )
    async def application_transfer_reject(callId: str, transferId: str) -> ActionResponse:
        await control.reject_transfer(callId, transferId)
        return ActionResponse(status=ActionStatus.COMPLETED)

    @action(
        "/calls/1/calls/{callId}/capture/dtmf",
        summary="Capture DTMF; DTMF_CAPTURED reports the digits (the terminator excluded)",
    )
    async def capture_dtmf(callId: str, body: DtmfCaptureRequest) -> ActionResponse:
        op = await control.capture_dtmf(
            callId,
            max_length=body.max_length,
            timeout_ms=body.timeout,
            terminator=body.terminator,
            digit_timeout_ms=body.digit_timeout,
            custom_data=body.custom_data,
        )
        if body.play_content is not None:
            await start_content(callId, body.play_content, loop_count=1, stop_on=ALL_DIGITS, custom_data=None)
        return ActionResponse(id=op)

    @action(
        "/calls/1/calls/{callId}/send-dtmf",
        summary="Send DTMF digits (RFC 4733)",
    )
    async def send_dtmf(callId: str, body: DtmfSendRequest) -> ActionResponse:
        await control.send_dtmf(callId, body.dtmf)
        return ActionResponse(status=ActionStatus.COMPLETED)

    @action(
        "/calls/1/calls/{callId}/start-recording",
        summary="Start recording; CALL_RECORDING_READY reports the file",
    )
    async def start_recording(
        callId: str,
        body: Annotated[RecordingRequest | None, Body()] = None,
    ) -> ActionResponse:
        body = body or RecordingRequest()
        rec_id = await control.start_recording(
            callId, fmt=RecordingFormat(body.file_format), custom_data=dict(body.custom_data or {})
        )
        return ActionResponse(id=rec_id)

    @action(
        "/calls/1/calls/{callId}/stop-recording",
        summary="Stop recording",
    )
    async def stop_recording(callId: str) -> ActionResponse:
        await control.stop_recording(callId)
        return ActionResponse()

    # -- dialogs -------------------------------------------------------------------------------------

    async def dialog_out(dialog: Dialog) -> DialogModel:
        async def maybe(call_id: str) -> Call | None:
            try:
                return await control.get_call(call_id)
            except SwitchboardError:
                return None

        return dialog_model(dialog, await maybe(dialog.parent_call_id), await maybe(dialog.child_call_id))

    @router.post(
        "/calls/1/dialogs",
        status_code=201,
        response_model=DialogModel,
        response_model_exclude_none=True,
        tags=["dialogs"],
        summary="Bridge a call with a new call",
    )
    async def create_dialog(body: DialogRequest) -> DialogModel:
        parent = await control.get_call(body.parent_call_id)
        child = body.child_call_request
        if child.endpoint.type is EndpointType.WHATSAPP and not child.from_:
            raise ApiError(400, "childCallRequest.from: the WhatsApp sender number is required")
        dialog = await control.connect(
            parent.id,
            CallRequest(
                endpoint=core_endpoint(child.endpoint),
                from_=child.from_ or parent.to,
                calls_configuration_id=parent.calls_configuration_id,
                application_id=parent.application_id,
                connect_timeout_s=child.connect_timeout or 60,
                max_duration_s=body.max_duration,
                custom_data=dict(child.custom_data or {}),
                parent_call_id=parent.id,
            ),
        )
        return await dialog_out(dialog)

    @router.post(
        "/calls/1/dialogs/parent-call/{parentCallId}/child-call/{childCallId}",
        status_code=201,
        response_model=DialogModel,
        response_model_exclude_none=True,
        tags=["dialogs"],
        summary="Bridge two existing calls",
    )
    async def create_dialog_with_existing_calls(
        parentCallId: str,
        childCallId: str,
        body: Annotated[DialogWithExistingCallRequest | None, Body()] = None,
    ) -> DialogModel:
        dialog = await control.connect(parentCallId, childCallId)
        return await dialog_out(dialog)

    @router.get(
        "/calls/1/dialogs",
        response_model=DialogPage,
        response_model_exclude_none=True,
        tags=["dialogs"],
        summary="List active dialogs",
    )
    async def list_dialogs(page: PageParam = 0, size: SizeParam = 20) -> DialogPage:
        dialogs, total = await control.list_dialogs(active=True, page=page, size=size)
        results = [await dialog_out(dialog) for dialog in dialogs]
        return DialogPage(results=results, paging=Paging.of(page, size, total))

    @router.get(
        "/calls/1/dialogs/{dialogId}",
        response_model=DialogModel,
        response_model_exclude_none=True,
        tags=["dialogs"],
        summary="Get a dialog",
    )
    async def get_dialog(dialogId: str) -> DialogModel:
        return await dialog_out(await control.get_dialog(dialogId))

    @router.post(
        "/calls/1/dialogs/{dialogId}/hangup",
        response_model=DialogModel,
        response_model_exclude_none=True,
        tags=["dialogs"],
        summary="Hang up both calls of a dialog",
    )
    async def hangup_dialog(dialogId: str) -> DialogModel:
        return await dialog_out(await control.hangup_dialog(dialogId))

    return router
