"""Wire models of the Call Routing API (`/callrouting/1`), named and shaped as Infobip's.

Every polymorphic object (criterion, destination, endpoint, application, security config) is a union
discriminated on `type`, and `type` is always written back. Regular expressions are compiled when a
request is read, so a bad one is a 400 naming its field. Fields are snake_case in Python and camelCase on
the wire; requests accept either.
"""

from __future__ import annotations

import enum
import re
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    model_validator,
)
from pydantic.alias_generators import to_camel

from switchboard.httpapi.numbers import PhoneNumber

MAX_PATTERN = 500
"""The longest regular expression a criterion takes (numbers and identities are short)."""
MASK = "********"
"""Stands for a URL destination's secret in answers; sent back unchanged (PUT), it keeps the stored one."""


def pattern(value: str) -> str:
    """A regular expression as written; `ValueError` (naming the problem) if it does not compile."""
    try:
        re.compile(value)
    except (re.error, OverflowError, RecursionError) as exc:
        raise ValueError(f"{value!r} is not a valid regular expression: {exc}") from None
    return value


Regex = Annotated[str, StringConstraints(max_length=MAX_PATTERN), AfterValidator(pattern)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=255)]
CustomData = dict[
    Annotated[str, StringConstraints(max_length=255)], Annotated[str, StringConstraints(max_length=4000)]
]


def format_time(value: datetime) -> str:
    """Infobip's timestamp format: ISO-8601 in UTC, milliseconds, `+0000` offset."""
    value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


InfobipTime = Annotated[datetime, PlainSerializer(format_time, return_type=str)]


class Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class RouteStatus(enum.StrEnum):
    ENABLED = "ENABLED"
    DISABLED = "DISABLED"


# -- criteria -----------------------------------------------------------------------------------------


class CustomDataEntry(Wire):
    key: Text
    value: Regex | None = None


class PhoneCriteria(Wire):
    type: Literal["PHONE"] = "PHONE"
    from_: Regex | None = Field(None, alias="from")


class SipHeader(Wire):
    header_name: Annotated[str, StringConstraints(pattern=r"^X-.*$", max_length=255)]
    header_value: Regex | None = None


class SipCriteria(Wire):
    type: Literal["SIP"] = "SIP"
    sip_trunk_id: Text | None = None
    username: Regex | None = None
    headers: list[SipHeader] | None = Field(None, max_length=20)


class WebRtcCriteria(Wire):
    type: Literal["WEBRTC"] = "WEBRTC"
    identity: Regex | None = None
    custom_data: list[CustomDataEntry] | None = Field(None, max_length=20)


class ApplicationCriteria(Wire):
    type: Literal["APPLICATION"] = "APPLICATION"
    calls_configuration_id: Text | None = None


class WhatsAppCriteria(Wire):
    type: Literal["WHATSAPP"] = "WHATSAPP"
    from_: Regex | None = Field(None, alias="from")
    custom_data: list[CustomDataEntry] | None = Field(None, max_length=20)


Criteria = Annotated[
    PhoneCriteria | SipCriteria | WebRtcCriteria | ApplicationCriteria | WhatsAppCriteria,
    Field(discriminator="type"),
]


class SearchCriteria(Wire):
    """One criterion: `to` (a regex over the called number) and what the caller must be (`value`)."""

    to: Regex | None = None
    value: Criteria | None = None


# -- endpoints ----------------------------------------------------------------------------------------


class RingbackGeneration(Wire):
    enabled: bool


class PhoneEndpoint(Wire):
    type: Literal["PHONE"] = "PHONE"
    from_: PhoneNumber | None = Field(None, alias="from")
    phone_number: PhoneNumber | None = None
    ringback_generation: RingbackGeneration | None = None


class SipEndpoint(Wire):
    type: Literal["SIP"] = "SIP"
    from_: Text | None = Field(None, alias="from")
    username: Text | None = None
    sip_trunk_id: Text
    custom_headers: dict[Annotated[str, StringConstraints(pattern=r"^X-.*$", max_length=255)], str] | None = (
        None
    )


class WebRtcEndpoint(Wire):
    type: Literal["WEBRTC"] = "WEBRTC"
    identity: Annotated[str, StringConstraints(min_length=3, max_length=64)] | None = None


class ViberEndpoint(Wire):
    type: Literal["VIBER"] = "VIBER"
    from_: PhoneNumber | None = Field(None, alias="from")
    phone_number: PhoneNumber | None = None


class WhatsAppEndpoint(Wire):
    type: Literal["WHATSAPP"] = "WHATSAPP"
    from_: PhoneNumber | None = Field(None, alias="from")
    """The WhatsApp sender the call goes out on (its display number)."""
    phone_number: PhoneNumber | None = None


class WebSocketEndpoint(Wire):
    type: Literal["WEBSOCKET"] = "WEBSOCKET"
    websocket_endpoint_config_id: Text
    identifier: Text | None = None
    custom_data: CustomData | None = None


Endpoint = Annotated[
    PhoneEndpoint | SipEndpoint | WebRtcEndpoint | ViberEndpoint | WhatsAppEndpoint | WebSocketEndpoint,
    Field(discriminator="type"),
]


# -- destinations -------------------------------------------------------------------------------------


class Day(enum.StrEnum):
    MONDAY = "MONDAY"
    TUESDAY = "TUESDAY"
    WEDNESDAY = "WEDNESDAY"
    THURSDAY = "THURSDAY"
    FRIDAY = "FRIDAY"
    SATURDAY = "SATURDAY"
    SUNDAY = "SUNDAY"


class TimeOfDay(Wire):
    hour: int = Field(ge=0, le=23)
    minute: int = Field(ge=0, le=59)


class TimeWindow(Wire):
    """On `days`, from `from` (default 00:00) until `to` (default the end of the day); a window whose `to`
    is before its `from` runs past midnight into the next day."""

    days: list[Day] = Field(min_length=1, max_length=7)
    from_: TimeOfDay | None = Field(None, alias="from")
    to: TimeOfDay | None = None


class RecordingType(enum.StrEnum):
    AUDIO = "AUDIO"
    AUDIO_AND_VIDEO = "AUDIO_AND_VIDEO"


class RecordingComposition(Wire):
    enabled: bool


class Recording(Wire):
    recording_type: RecordingType
    recording_composition: RecordingComposition | None = None
    custom_data: CustomData | None = None
    file_prefix: (
        Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[a-zA-Z0-9_\-]*$")] | None
    ) = None


Priority = Annotated[int, Field(ge=1, le=100)]
ConnectTimeout = Annotated[int, Field(ge=1, le=300, description="Seconds to wait for an answer.")]
TimeWindows = Annotated[list[TimeWindow], Field(max_length=50)]


class EndpointDestination(Wire):
    type: Literal["ENDPOINT"] = "ENDPOINT"
    priority: Priority | None = None
    weight: Priority | None = None
    value: Endpoint
    connect_timeout: ConnectTimeout | None = None
    recording: Recording | None = None
    allowed_time_windows: TimeWindows | None = None


class HmacAlgorithm(enum.StrEnum):
    HMAC_MD5 = "HMAC_MD5"
    HMAC_SHA_1 = "HMAC_SHA_1"
    HMAC_SHA_224 = "HMAC_SHA_224"
    HMAC_SHA_256 = "HMAC_SHA_256"
    HMAC_SHA_384 = "HMAC_SHA_384"
    HMAC_SHA_512 = "HMAC_SHA_512"


class BasicSecurityConfig(Wire):
    type: Literal["BASIC"] = "BASIC"
    username: Text
    password: Annotated[str, StringConstraints(min_length=1, max_length=1000)]


class HmacSecurityConfig(Wire):
    type: Literal["HMAC"] = "HMAC"
    secret_key: Annotated[str, StringConstraints(min_length=1, max_length=1000)]
    algorithm: HmacAlgorithm


SecurityConfig = Annotated[BasicSecurityConfig | HmacSecurityConfig, Field(discriminator="type")]


class UrlDestination(Wire):
    type: Literal["URL"] = "URL"
    priority: Priority | None = None
    weight: Priority | None = None
    url: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    security_config: SecurityConfig | None = None


class CallsApplication(Wire):
    type: Literal["CALLS_APPLICATION"] = "CALLS_APPLICATION"
    application_id: Text
    """The calls configuration (Calls API application) the call is transferred to."""
    custom_data: CustomData | None = None
    timeout: Annotated[int, Field(ge=1, le=300)] | None = None
    """Seconds the application has to accept the call."""


class InfobipApplication(Wire):
    type: Literal["INFOBIP_APPLICATION"] = "INFOBIP_APPLICATION"
    application_id: Literal["CONVERSATIONS"]
    custom_data: CustomData | None = None


Application = Annotated[CallsApplication | InfobipApplication, Field(discriminator="type")]


class ApplicationDestination(Wire):
    type: Literal["APPLICATION"] = "APPLICATION"
    priority: Priority | None = None
    weight: Priority | None = None
    value: Application
    allowed_time_windows: TimeWindows | None = None


Destination = Annotated[
    EndpointDestination | UrlDestination | ApplicationDestination, Field(discriminator="type")
]


# -- routes -------------------------------------------------------------------------------------------


class RouteRequest(Wire):
    name: Text
    criteria: list[SearchCriteria] | None = Field(None, max_length=100)
    destinations: list[Destination] = Field(min_length=1, max_length=10)

    @model_validator(mode="after")
    def _priorities(self) -> RouteRequest:
        for name in ("priority", "weight"):
            given = [getattr(d, name) is not None for d in self.destinations]
            if any(given) and not all(given):
                missing = given.index(False)
                raise ValueError(
                    f"destinations[{missing}].{name}: either every destination or none has a {name}"
                )
        conflict = pstn_conflict(self.criteria, self.destinations)
        if conflict:
            raise ValueError(conflict)
        return self


PSTN_BAN = "a WhatsApp call is never connected to the PSTN"


def pstn_conflict(criteria: list[SearchCriteria] | None, destinations: list[Destination]) -> str | None:
    """Why the route joins WhatsApp and the PSTN, naming the criterion and the destination; else None.

    A WHATSAPP criterion (or a criterion, or no criteria, that matches every call) with a PHONE endpoint
    destination, or a PHONE criterion with a WHATSAPP endpoint destination."""
    kinds = [(c.value.type if c.value else None) for c in criteria or []]
    for d_index, destination in enumerate(destinations):
        if not isinstance(destination, EndpointDestination):
            continue
        target = destination.value.type
        if target == "PHONE":
            if not kinds:
                return (
                    f"criteria: a route without criteria matches WhatsApp calls, and destinations[{d_index}] "
                    f"is a PHONE endpoint: {PSTN_BAN}"
                )
            for c_index, kind in enumerate(kinds):
                if kind in ("WHATSAPP", None):
                    what = "WHATSAPP" if kind else "without a value, matches every call"
                    return (
                        f"criteria[{c_index}] ({what}) can match a WhatsApp call and "
                        f"destinations[{d_index}] is a PHONE endpoint: {PSTN_BAN}"
                    )
        if target == "WHATSAPP":
            for c_index, kind in enumerate(kinds):
                if kind == "PHONE":
                    return (
                        f"criteria[{c_index}] (PHONE) matches phone calls and destinations[{d_index}] "
                        f"is a WHATSAPP endpoint: {PSTN_BAN}"
                    )
    return None


class RouteResponse(Wire):
    id: str
    name: str
    criteria: list[SearchCriteria] = Field(default_factory=list)
    destinations: list[Destination]
    status: RouteStatus
    order: int


class Paging(Wire):
    page: int
    size: int
    total_pages: int
    total_results: int

    @classmethod
    def of(cls, page: int, size: int, total: int) -> Paging:
        size = max(1, size)
        return cls(page=page, size=size, total_pages=(total + size - 1) // size, total_results=total)


class RoutePage(Wire):
    results: list[RouteResponse]
    paging: Paging


class RouteOrderRequest(Wire):
    order: int = Field(ge=1, le=2**31 - 1)


class RouteStatusRequest(Wire):
    route_status: RouteStatus


# -- simulate -----------------------------------------------------------------------------------------


class SimulatorPhoneEndpoint(Wire):
    type: Literal["PHONE"] = "PHONE"
    from_: Annotated[str, StringConstraints(max_length=255)] | None = Field(None, alias="from")


class SimulatorSipEndpoint(Wire):
    type: Literal["SIP"] = "SIP"
    from_: Annotated[str, StringConstraints(max_length=255)] | None = Field(None, alias="from")
    sip_trunk_id: Text
    headers: dict[str, Annotated[str, StringConstraints(max_length=4000)]] | None = None


class SimulatorWebRtcEndpoint(Wire):
    type: Literal["WEBRTC"] = "WEBRTC"
    from_: Annotated[str, StringConstraints(max_length=255)] | None = Field(None, alias="from")
    custom_data: CustomData | None = None


class SimulatorWhatsAppEndpoint(Wire):
    type: Literal["WHATSAPP"] = "WHATSAPP"
    from_: Annotated[str, StringConstraints(max_length=255)] | None = Field(None, alias="from")
    custom_data: CustomData | None = None


SimulatorEndpoint = Annotated[
    SimulatorPhoneEndpoint | SimulatorSipEndpoint | SimulatorWebRtcEndpoint | SimulatorWhatsAppEndpoint,
    Field(discriminator="type"),
]


class SimulateRequest(Wire):
    to: Annotated[str, StringConstraints(max_length=255)] | None = None
    use_disabled_routes: bool = False
    endpoint: SimulatorEndpoint


# -- the URL destination's exchange --------------------------------------------------------------------


class UrlDestinationRequest(Wire):
    """What the platform POSTs to a URL destination."""

    application_id: Literal["CALL_ROUTING"] = "CALL_ROUTING"
    route_id: str
    call_id: str
    from_: str = Field(alias="from")
    to: str
    start_time: InfobipTime


class UrlDestinationResponse(Wire):
    """What a URL destination answers: the endpoint to try next."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    type: Literal["ENDPOINT"]
    value: Endpoint
    connect_timeout: ConnectTimeout | None = None
    recording: Recording | None = None


# -- recordings ---------------------------------------------------------------------------------------


class RecordedFile(Wire):
    id: str
    name: str
    file_format: str
    size: int
    start_time: InfobipTime | None = None
    end_time: InfobipTime | None = None
    creation_time: InfobipTime | None = None
    duration: int
    location: Literal["HOSTED"] = "HOSTED"
    custom_data: dict[str, str] | None = None


class CallRecording(Wire):
    call_id: str
    endpoint: str
    direction: Literal["INBOUND", "OUTBOUND"]
    status: Literal["SUCCESSFUL"] = "SUCCESSFUL"
    reason: str | None = None
    files: list[RecordedFile]


class RecordingApplication(Wire):
    type: Literal["CALL_ROUTING"] = "CALL_ROUTING"
    route_id: str | None = None
    route_name: str | None = None
    correlation_id: str
    start_time: InfobipTime | None = None
    end_time: InfobipTime | None = None


class RecordingMetadata(Wire):
    composed_files: list[RecordedFile] = Field(default_factory=list)
    call_recordings: list[CallRecording] = Field(default_factory=list)


class RecordingResponse(Wire):
    application: RecordingApplication
    recording: RecordingMetadata


class RecordingPage(Wire):
    results: list[RecordingResponse]
    paging: Paging
