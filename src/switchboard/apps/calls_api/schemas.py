"""Wire models of the Calls API, named and shaped as Infobip's (`/calls/1`, `/subscriptions/1`).

Fields are snake_case in Python and camelCase on the wire (aliases); requests accept either. Times are
written as Infobip writes them: `2026-01-01T10:00:00.000+0000`.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    model_validator,
)
from pydantic.alias_generators import to_camel

from switchboard.core.models import (
    CallState,
    DialogState,
    Direction,
    EndpointType,
    HangupDelivery,
    HangupSource,
    InboundAction,
)
from switchboard.httpapi.numbers import phone_number
from switchboard.media.engine import MAX_DTMF_DIGITS


def format_time(value: datetime) -> str:
    """Infobip's timestamp format: ISO-8601, milliseconds, `+0000` offset."""
    value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


InfobipTime = Annotated[datetime, PlainSerializer(format_time, return_type=str)]


class Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class Paging(Wire):
    page: int
    size: int
    total_pages: int
    total_results: int

    @classmethod
    def of(cls, page: int, size: int, total: int) -> Paging:
        size = max(1, size)
        return cls(page=page, size=size, total_pages=(total + size - 1) // size, total_results=total)


# -- calls configurations -------------------------------------------------------------------------

Name128 = Annotated[str, Field(min_length=1, max_length=128)]

INT32_MAX = 2**31 - 1
MAX_CALL_DURATION_S = 86400
MAX_CAPTURE_MS = 600_000
"""The longest a DTMF capture (and the wait between its digits) may last: ten minutes."""
MAX_LOOP_COUNT = 10_000
MaxDuration = Annotated[
    int | None, Field(ge=1, le=MAX_CALL_DURATION_S, description="Seconds after answer before hanging up.")
]
LoopCount = Annotated[int | None, Field(default=None, ge=1, le=MAX_LOOP_COUNT)]


class CallsConfigurationCreateRequest(Wire):
    id: Name128 | None = None
    name: Name128 | None = None


class CallsConfigurationUpdateRequest(Wire):
    name: Name128 | None = None


class CallsConfigurationResponse(Wire):
    id: str
    name: str | None = None


class CallsConfigurationPage(Wire):
    results: list[CallsConfigurationResponse]
    paging: Paging


# -- subscriptions ---------------------------------------------------------------------------------


class SubscriptionCriterion(Wire):
    model_config = ConfigDict(extra="allow")
    calls_configuration_id: str = Field(min_length=1, max_length=128)


class WebhookHeader(Wire):
    key: str
    value: str


class Webhook(Wire):
    notify_url: str = Field(min_length=1)
    headers: dict[str, str] | list[WebhookHeader] | None = None

    def header_map(self) -> dict[str, str]:
        if self.headers is None:
            return {}
        if isinstance(self.headers, dict):
            return dict(self.headers)
        return {h.key: h.value for h in self.headers}


class SecurityType(enum.StrEnum):
    BASIC = "BASIC"
    HMAC = "HMAC"
    NONE = "NONE"


class HmacAlgorithm(enum.StrEnum):
    """The SDK's `HmacAlgorithm` names; the digest used to sign webhook bodies."""

    HMAC_MD5 = "HMAC_MD5"
    HMAC_SHA_1 = "HMAC_SHA_1"
    HMAC_SHA_224 = "HMAC_SHA_224"
    HMAC_SHA_256 = "HMAC_SHA_256"
    HMAC_SHA_384 = "HMAC_SHA_384"
    HMAC_SHA_512 = "HMAC_SHA_512"


class Credentials(Wire):
    username: str | None = None
    password: str | None = None
    secret_key: str | None = None
    algorithm: HmacAlgorithm | None = None


class Security(Wire):
    """`{type, credentials{username, password}}` (BASIC) or `{type, credentials{secretKey, algorithm}}`
    (HMAC); the SDK's flat form (`{type, username, password}` / `{type, secretKey, algorithm}`) too."""

    type: SecurityType = SecurityType.NONE
    credentials: Credentials | None = None
    username: str | None = None
    password: str | None = None
    secret_key: str | None = None
    algorithm: HmacAlgorithm | None = None

    @model_validator(mode="after")
    def _complete(self) -> Security:
        creds = self.credentials or Credentials()
        self.credentials = Credentials(
            username=creds.username or self.username,
            password=creds.password or self.password,
            secret_key=creds.secret_key or self.secret_key,
            algorithm=creds.algorithm or self.algorithm,
        )
        self.username = self.password = self.secret_key = None
        self.algorithm = None
        c = self.credentials
        if self.type is SecurityType.BASIC and not (c.username and c.password):
            raise ValueError("BASIC security needs credentials.username and credentials.password")
        if self.type is SecurityType.HMAC and not c.secret_key:
            raise ValueError("HMAC security needs credentials.secretKey")
        return self


class Profile(Wire):
    profile_id: str | None = None
    webhook: Webhook
    security: Security | None = None


class SubscriptionRequest(Wire):
    subscription_id: Name128 | None = None
    name: Annotated[str, Field(min_length=1, max_length=256)]
    events: list[str] = Field(min_length=1)
    criteria: list[SubscriptionCriterion] = Field(min_length=1)
    profile: Profile


class SubscriptionResponse(Wire):
    subscription_id: str
    name: str
    events: list[str]
    criteria: list[dict[str, Any]]
    profile: dict[str, Any]
    """The profile as stored, with passwords and secret keys left out."""


class SubscriptionPage(Wire):
    results: list[SubscriptionResponse]
    paging: Paging


# -- calls -----------------------------------------------------------------------------------------


class EndpointModel(Wire):
    """A call's far end; `type` says which fields apply (PHONE/WHATSAPP/VIBER: `phoneNumber`, ...)."""

    type: EndpointType
    phone_number: str | None = None
    username: str | None = None
    sip_trunk_id: str | None = None
    identity: str | None = None
    display_name: str | None = None

    @model_validator(mode="after")
    def _fields(self) -> EndpointModel:
        needs_number = (EndpointType.PHONE, EndpointType.WHATSAPP, EndpointType.VIBER)
        if self.type in needs_number and not self.phone_number:
            raise ValueError(f"a {self.type.value} endpoint needs phoneNumber")
        if self.type is EndpointType.WHATSAPP and self.phone_number:
            try:
                self.phone_number = phone_number(self.phone_number)
            except ValueError as exc:
                raise ValueError(f"phoneNumber: {exc}") from None
        if self.type is EndpointType.WEBRTC and not self.identity:
            raise ValueError("a WEBRTC endpoint needs identity")
        if self.type is EndpointType.SIP and not self.username:
            raise ValueError("a SIP endpoint needs username")
        return self


class PlatformModel(Wire):
    application_id: str | None = None
    entity_id: str | None = None


class CallRecordingRequest(Wire):
    model_config = ConfigDict(extra="allow")
    recording_type: Literal["AUDIO", "AUDIO_AND_VIDEO"] = "AUDIO"
    custom_data: dict[str, str] | None = None
    file_prefix: str | None = None


def whatsapp_from(value: str | None, info: ValidationInfo) -> str | None:
    """`from` of a call to a WhatsApp user names a sender by its number (or its phone number id): digits."""
    endpoint = info.data.get("endpoint")
    if value is None or not isinstance(endpoint, EndpointModel) or endpoint.type is not EndpointType.WHATSAPP:
        return value
    return phone_number(value)


class CallRequestModel(Wire):
    endpoint: EndpointModel
    from_: Annotated[str | None, AfterValidator(whatsapp_from)] = Field(default=None, alias="from")
    from_display_name: str | None = None
    connect_timeout: int | None = Field(default=None, ge=1, le=60)
    recording: CallRecordingRequest | None = None
    machine_detection: dict[str, Any] | None = None
    max_duration: MaxDuration = 28800
    custom_data: dict[str, str] | None = None
    calls_configuration_id: str = Field(min_length=1, max_length=128)
    platform: PlatformModel | None = None
    parent_call_id: str | None = Field(default=None, max_length=128)
    external_id: str | None = None


class AudioProperties(Wire):
    muted: bool = False
    user_muted: bool = False
    deaf: bool = False


class VideoProperties(Wire):
    camera: bool = False
    screen_share: bool = False
    blind: bool = False


class MediaProperties(Wire):
    audio: AudioProperties = Field(default_factory=AudioProperties)
    video: VideoProperties = Field(default_factory=VideoProperties)


class TargetModel(Wire):
    """An application the call was handed to: its inbound action and what it was given."""

    action: InboundAction
    id: str | None = None


class CallModel(Wire):
    """Infobip's `Call`. Ours, ignored by the SDK: `targets` (the applications the call was handed to,
    in order; the last has it), `hangupDelivery` (PENDING/DELIVERED/FAILED when the far end could not be
    told at once that the call ended) and `mediaDiagnostics` (the media engine's view)."""

    id: str
    endpoint: EndpointModel
    from_: str | None = Field(default=None, alias="from")
    to: str | None = None
    direction: Direction
    state: CallState
    media: MediaProperties = Field(default_factory=MediaProperties)
    start_time: InfobipTime | None = None
    answer_time: InfobipTime | None = None
    end_time: InfobipTime | None = None
    parent_call_id: str | None = None
    ring_duration: int | None = None
    calls_configuration_id: str | None = None
    platform: PlatformModel | None = None
    conference_id: str | None = None
    custom_data: dict[str, str] | None = None
    dialog_id: str | None = None
    external_id: str | None = None
    targets: list[TargetModel] | None = None
    hangup_delivery: HangupDelivery | None = None
    hangup_delivery_error: str | None = None
    media_diagnostics: dict[str, Any] | None = None


class CallPage(Wire):
    results: list[CallModel]
    paging: Paging


class ErrorCodeInfo(Wire):
    id: int
    name: str
    description: str


class CallLogModel(Wire):
    """Infobip's `CallLog` (`GET .../history`, `properties.callLog` of CALL_FINISHED/CALL_FAILED)."""

    call_id: str
    endpoint: EndpointModel
    from_: str | None = Field(default=None, alias="from")
    to: str | None = None
    direction: Direction
    state: CallState
    start_time: InfobipTime | None = None
    answer_time: InfobipTime | None = None
    end_time: InfobipTime | None = None
    parent_call_id: str | None = None
    ring_duration: int | None = None
    calls_configuration_ids: list[str] = Field(default_factory=list)
    platform: PlatformModel | None = None
    conference_ids: list[str] = Field(default_factory=list)
    duration: int = 0
    """Whole seconds from answer to end."""
    has_camera_video: bool = False
    has_screenshare_video: bool = False
    error_code: ErrorCodeInfo | None = None
    custom_data: dict[str, str] | None = None
    dialog_id: str | None = None
    sender: str | None = None
    hangup_source: HangupSource | None = None
    hangup_delivery: HangupDelivery | None = None
    hangup_delivery_error: str | None = None
    media_diagnostics: dict[str, Any] | None = None


class CallLogPage(Wire):
    results: list[CallLogModel]
    paging: Paging


# -- actions ---------------------------------------------------------------------------------------


class ApplicationTransferRequest(Wire):
    """Infobip's `CallsApplicationTransferRequest`."""

    destination_calls_configuration_id: str = Field(min_length=1, max_length=128)
    platform: PlatformModel | None = None
    timeout: int = Field(30, ge=1, le=3600, description="Seconds the destination has to accept.")
    custom_data: dict[str, str] | None = None


class ActionStatus(enum.StrEnum):
    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class ActionResponse(Wire):
    """Infobip's `CallsActionResponse`; `id` (ours) names the operation (playback, capture, recording)."""

    id: str | None = None
    status: ActionStatus = ActionStatus.PENDING


class AnswerRequest(Wire):
    custom_data: dict[str, str] | None = None
    recording: CallRecordingRequest | None = None


class PreAnswerRequest(Wire):
    ringing: bool | None = None
    custom_data: dict[str, str] | None = None


class HangupRequest(Wire):
    error_code: str | None = None


class VoicePreferences(Wire):
    voice_gender: Literal["FEMALE", "MALE"] | None = None
    voice_name: str | None = None


class Termination(Wire):
    type: Literal["DTMF"] = "DTMF"
    terminator: str | None = Field(default=None, max_length=12)


class PlayContent(Wire):
    """`FILE{fileId}` (uploaded), `URL{fileUrl, cacheDuration}`, `TEXT{text, language, ...}`,
    `RECORDING{fileId}` (a call recording)."""

    type: Literal["FILE", "URL", "TEXT", "RECORDING"]
    file_id: str | None = None
    file_url: str | None = None
    cache_duration: int | None = Field(default=None, ge=0, le=86400)
    text: str | None = Field(default=None, max_length=1400)
    language: str | None = None
    speech_rate: float | None = Field(default=None, ge=0.5, le=2.0)
    preferences: VoicePreferences | None = None

    @model_validator(mode="after")
    def _fields(self) -> PlayContent:
        if self.type in ("FILE", "RECORDING") and not self.file_id:
            raise ValueError(f"{self.type} content needs fileId")
        if self.type == "URL" and not self.file_url:
            raise ValueError("URL content needs fileUrl")
        if self.type == "TEXT" and not self.text:
            raise ValueError("TEXT content needs text")
        return self


class PlayRequest(Wire):
    content: PlayContent
    loop_count: LoopCount = None
    timeout: int | None = Field(default=None, ge=0, le=INT32_MAX)
    offset: int | None = Field(default=None, ge=0, le=INT32_MAX)
    stop_on: Termination | None = None
    custom_data: dict[str, str] | None = None


class SayRequest(Wire):
    text: str = Field(min_length=1, max_length=1400)
    language: str = Field(min_length=2)
    speech_rate: float | None = Field(default=None, ge=0.5, le=2.0)
    loop_count: LoopCount = None
    preferences: VoicePreferences | None = None
    stop_on: Termination | None = None
    custom_data: dict[str, str] | None = None


class DtmfCaptureRequest(Wire):
    max_length: int = Field(ge=1, le=255)
    timeout: int = Field(ge=1, le=MAX_CAPTURE_MS, description="Milliseconds the whole capture may take.")
    terminator: str | None = Field(default=None, max_length=12)
    digit_timeout: int | None = Field(
        default=None, ge=1, le=MAX_CAPTURE_MS, description="Milliseconds between digits."
    )
    play_content: PlayContent | None = None
    custom_data: dict[str, str] | None = None


class DtmfSendRequest(Wire):
    dtmf: str = Field(
        min_length=1,
        max_length=MAX_DTMF_DIGITS,
        pattern=r"^[0-9A-Da-d*#wW]+$",
        description="Keys 0-9, *, #, A-D; w and W pause 0.5 s and 1 s.",
    )
    custom_data: dict[str, str] | None = None


class RecordingRequest(Wire):
    model_config = ConfigDict(extra="allow")
    recording_type: Literal["AUDIO", "AUDIO_AND_VIDEO"] = "AUDIO"
    file_format: Literal["WAV", "OGG"] = "WAV"
    """Ours: the recording's container (Infobip records WAV)."""
    custom_data: dict[str, str] | None = None
    file_prefix: str | None = None


# -- dialogs ---------------------------------------------------------------------------------------


class DialogCallRequest(Wire):
    endpoint: EndpointModel
    from_: Annotated[str | None, AfterValidator(whatsapp_from)] = Field(default=None, alias="from")
    from_display_name: str | None = None
    connect_timeout: int | None = Field(default=None, ge=1, le=60)
    machine_detection: dict[str, Any] | None = None
    custom_data: dict[str, str] | None = None


class DialogRequest(Wire):
    model_config = ConfigDict(extra="allow")
    parent_call_id: str = Field(min_length=1, max_length=128)
    child_call_request: DialogCallRequest
    max_duration: MaxDuration = 28800


class DialogWithExistingCallRequest(Wire):
    model_config = ConfigDict(extra="allow")
    max_duration: MaxDuration = 28800


class DialogModel(Wire):
    id: str
    calls_configuration_id: str | None = None
    platform: PlatformModel | None = None
    state: DialogState
    start_time: InfobipTime | None = None
    establish_time: InfobipTime | None = None
    end_time: InfobipTime | None = None
    parent_call: CallModel | None = None
    child_call: CallModel | None = None


class DialogPage(Wire):
    results: list[DialogModel]
    paging: Paging


# -- files and recordings --------------------------------------------------------------------------


class CallsFileModel(Wire):
    id: str
    name: str
    file_format: str
    size: int | None = None
    creation_method: str = "UPLOADED"
    creation_time: InfobipTime | None = None
    duration: int | None = None


class CallsFilePage(Wire):
    results: list[CallsFileModel]
    paging: Paging


class RecordingFileModel(Wire):
    id: str
    name: str
    file_format: str
    size: int | None = None
    creation_time: InfobipTime | None = None
    duration: int | None = None
    start_time: InfobipTime | None = None
    end_time: InfobipTime | None = None
    location: Literal["HOSTED"] = "HOSTED"
    custom_data: dict[str, str] | None = None


class CallRecordingModel(Wire):
    call_id: str
    endpoint: EndpointModel | None = None
    direction: Direction | None = None
    files: list[RecordingFileModel]
    status: Literal["SUCCESSFUL", "PARTIALLY_FAILED", "FAILED"] = "SUCCESSFUL"
    calls_configuration_id: str | None = None
    platform: PlatformModel | None = None
    start_time: InfobipTime | None = None
    end_time: InfobipTime | None = None


class CallRecordingPage(Wire):
    results: list[CallRecordingModel]
    paging: Paging


# -- webhooks --------------------------------------------------------------------------------------


class EventEnvelope(Wire):
    """What a subscription's webhook receives (Infobip's event envelope)."""

    type: str
    call_id: str | None = None
    conference_id: str | None = None
    dialog_id: str | None = None
    calls_configuration_id: str | None = None
    platform: PlatformModel
    timestamp: InfobipTime
    properties: dict[str, Any]
