"""From the core's objects and events to Infobip's JSON: `Call`, `CallLog`, dialogs, event envelopes.

Event names are a mapping at this edge (STYLE §3): `CallReceived` → `CALL_RECEIVED`, ... `DtmfReceived`
is internal and has no name (it is not delivered).
"""

from __future__ import annotations

from typing import Any

from switchboard.apps.calls_api.schemas import (
    CallLogModel,
    CallModel,
    DialogModel,
    EndpointModel,
    ErrorCodeInfo,
    EventEnvelope,
    PlatformModel,
    TargetModel,
)
from switchboard.core import events as ev
from switchboard.core.models import Call, Dialog, Endpoint, InboundAction, InboundTarget

EVENT_NAMES: dict[type[ev.CallEvent], str] = {
    ev.CallReceived: "CALL_RECEIVED",
    ev.CallStarted: "CALL_STARTED",
    ev.CallRinging: "CALL_RINGING",
    ev.CallPreEstablished: "CALL_PRE_ESTABLISHED",
    ev.CallEstablished: "CALL_ESTABLISHED",
    ev.CallFinished: "CALL_FINISHED",
    ev.CallFailed: "CALL_FAILED",
    ev.PlayFinished: "PLAY_FINISHED",
    ev.SayFinished: "SAY_FINISHED",
    ev.DtmfCaptured: "DTMF_CAPTURED",
    ev.RecordingReady: "CALL_RECORDING_READY",
    ev.DialogCreated: "DIALOG_CREATED",
    ev.DialogEstablished: "DIALOG_ESTABLISHED",
    ev.DialogFinished: "DIALOG_FINISHED",
    ev.DialogFailed: "DIALOG_FAILED",
    ev.DialogUnbridged: "DIALOG_FINISHED",
    ev.TransferRequested: "APPLICATION_TRANSFER_REQUESTED",
    ev.TransferFinished: "APPLICATION_TRANSFER_FINISHED",
    ev.TransferFailed: "APPLICATION_TRANSFER_FAILED",
}
"""Core event class → Infobip event type. Exact classes: `SayFinished` is not a `PLAY_FINISHED`."""


def event_name(event: ev.CallEvent) -> str | None:
    return EVENT_NAMES.get(type(event))


def _configuration(target: InboundTarget | None) -> str | None:
    return target.id if target is not None and target.action is InboundAction.SUBSCRIPTION else None


def event_configurations(event: ev.CallEvent) -> list[str]:
    """The calls configurations whose subscriptions receive `event`: the call's own; for a transfer,
    the source's and the destination's (the destination hears of it before it has the call)."""
    if isinstance(event, ev.TransferEvent):
        found = [_configuration(event.source), _configuration(event.destination)]
    else:
        found = [event.call.calls_configuration_id]
    return list(dict.fromkeys(c for c in found if c))


def endpoint_model(endpoint: Endpoint) -> EndpointModel:
    return EndpointModel.model_construct(
        type=endpoint.type,
        phone_number=endpoint.phone_number,
        username=endpoint.username,
        sip_trunk_id=endpoint.sip_trunk_id,
        identity=endpoint.identity,
        display_name=endpoint.display_name,
    )


def platform_model(call: Call) -> PlatformModel:
    return PlatformModel(application_id=call.application_id)


def call_model(call: Call) -> CallModel:
    return CallModel(
        id=call.id,
        endpoint=endpoint_model(call.endpoint),
        from_=call.from_,
        to=call.to,
        direction=call.direction,
        state=call.state,
        start_time=call.start_time,
        answer_time=call.answer_time,
        end_time=call.end_time,
        parent_call_id=call.parent_call_id,
        ring_duration=call.ring_duration,
        calls_configuration_id=call.calls_configuration_id,
        platform=platform_model(call),
        custom_data=dict(call.custom_data),
        dialog_id=call.dialog_id,
        external_id=call.external_id,
        targets=[TargetModel(action=t.action, id=t.id) for t in call.targets] or None,
        hangup_delivery=call.hangup_delivery,
        hangup_delivery_error=call.hangup_delivery_error,
        media_diagnostics=dict(call.media) or None,
    )


def call_log_model(call: Call) -> CallLogModel:
    error = call.error
    return CallLogModel(
        call_id=call.id,
        endpoint=endpoint_model(call.endpoint),
        from_=call.from_,
        to=call.to,
        direction=call.direction,
        state=call.state,
        start_time=call.start_time,
        answer_time=call.answer_time,
        end_time=call.end_time,
        parent_call_id=call.parent_call_id,
        ring_duration=call.ring_duration,
        calls_configuration_ids=[call.calls_configuration_id] if call.calls_configuration_id else [],
        platform=platform_model(call),
        duration=call.duration,
        error_code=(
            ErrorCodeInfo(id=error.id, name=error.code.value, description=error.description)
            if error
            else None
        ),
        custom_data=dict(call.custom_data),
        dialog_id=call.dialog_id,
        sender=call.from_ if call.direction.value == "OUTBOUND" else call.to,
        hangup_source=call.hangup_source,
        hangup_delivery=call.hangup_delivery,
        hangup_delivery_error=call.hangup_delivery_error,
        media_diagnostics=dict(call.media) or None,
    )


def dialog_model(dialog: Dialog, parent: Call | None, child: Call | None) -> DialogModel:
    return DialogModel(
        id=dialog.id,
        calls_configuration_id=dialog.calls_configuration_id,
        platform=platform_model(parent) if parent else None,
        state=dialog.state,
        start_time=dialog.start_time,
        establish_time=dialog.establish_time,
        end_time=dialog.end_time,
        parent_call=call_model(parent) if parent else None,
        child_call=call_model(child) if child else None,
    )


def _dump(model: CallModel | CallLogModel | DialogModel) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def properties(event: ev.CallEvent, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """`properties` of the envelope for `event` (see the reference §A, "Webhook events")."""
    call = event.call
    match event:
        case ev.CallFinished() | ev.CallFailed():
            return {"callLog": _dump(call_log_model(call))}
        case ev.PlayFinished(
            duration_ms=duration, completed=completed, captured_dtmf=dtmf, custom_data=custom
        ):
            return {
                "duration": duration,
                "playedCompletely": completed,
                "capturedDtmf": dtmf,
                "customData": custom or None,
            }
        case ev.DtmfCaptured(dtmf=dtmf, timeout=timeout, custom_data=custom):
            return {"dtmf": dtmf, "timeout": timeout, "customData": custom or None}
        case ev.RecordingReady():
            return dict(extra or {})
        case ev.TransferEvent():
            return _transfer_properties(event)
        case ev.DialogEvent(dialog=dialog):
            props: dict[str, Any] = {"dialog": _dump(dialog_model(dialog, call, None))}
            if isinstance(event, ev.DialogFinished | ev.DialogFailed):
                props["duration"] = dialog.duration
                if dialog.error is not None:
                    props["errorCode"] = {
                        "id": dialog.error.id,
                        "name": dialog.error.code.value,
                        "description": dialog.error.description,
                    }
            return props
        case _:
            return {"call": _dump(call_model(call))}


def _transfer_properties(event: ev.TransferEvent) -> dict[str, Any]:
    props: dict[str, Any] = {
        "transferId": event.transfer_id,
        "sourceCallsConfigurationId": _configuration(event.source),
        "sourceApplicationId": event.source.action.value if event.source else None,
    }
    if isinstance(event, ev.TransferRequested):
        props["call"] = _dump(call_model(event.call))
        props["customData"] = event.custom_data or None
    else:
        props["destinationCallsConfigurationId"] = _configuration(event.destination)
        props["destinationApplicationId"] = event.destination.action.value
    if isinstance(event, ev.TransferFailed):
        props["reason"] = event.reason
    return props


def envelope(event: ev.CallEvent, name: str, extra: dict[str, Any] | None = None) -> EventEnvelope:
    call = event.call
    dialog_id = event.dialog.id if isinstance(event, ev.DialogEvent) else call.dialog_id
    return EventEnvelope(
        type=name,
        call_id=call.id,
        conference_id=None,
        dialog_id=dialog_id,
        calls_configuration_id=call.calls_configuration_id,
        platform=platform_model(call),
        timestamp=event.timestamp,
        properties=properties(event, extra),
    )
