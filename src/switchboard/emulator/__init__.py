"""Meta Cloud API emulator: Graph API calling endpoints, signed webhooks and a WebRTC WhatsApp user.

It plays Meta for a server under test and reaches that server only over HTTP and WebRTC; it imports
nothing else from `switchboard`. Configure the server with `graph_api_url = emulator.graph_url`
(no version: the server appends `/v23.0/{phone_number_id}/calls`) and point the emulator's
`webhook_url` at the server's webhook endpoint.
"""

from ._control import scripted_call
from ._emulator import MetaEmulator
from ._graph import create_graph_app
from ._media import (
    AudioOut,
    Recorder,
    dominant_frequency,
    read_audio_file,
    restrict_host_addresses,
    send_dtmf,
    telephone_event_packets,
    tone,
    write_wav,
)
from ._phone import BrowserCall
from ._state import (
    BusinessNumber,
    EmulatorState,
    Faults,
    GraphError,
    PermissionRecord,
    RecordedRequest,
)
from ._user import AnswerPolicy, CallBase, PermissionPolicy, UserCall, WhatsAppUser
from ._webhooks import Delivery, WebhookSender, envelope, serialize, sign, verify
from .cli import main, place_call, run_emulator

__all__ = [
    "AnswerPolicy",
    "AudioOut",
    "BrowserCall",
    "BusinessNumber",
    "CallBase",
    "Delivery",
    "EmulatorState",
    "Faults",
    "GraphError",
    "MetaEmulator",
    "PermissionPolicy",
    "PermissionRecord",
    "RecordedRequest",
    "Recorder",
    "UserCall",
    "WebhookSender",
    "WhatsAppUser",
    "create_graph_app",
    "dominant_frequency",
    "envelope",
    "main",
    "place_call",
    "read_audio_file",
    "restrict_host_addresses",
    "run_emulator",
    "scripted_call",
    "send_dtmf",
    "serialize",
    "sign",
    "telephone_event_packets",
    "tone",
    "verify",
    "write_wav",
]
