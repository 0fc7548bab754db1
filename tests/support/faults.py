"""A server process for fault tests (its own config, fast retries), its app's subscription, and the
events the app received, by the `X-Event-Id`s each arrived with."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx

from support.platform import API_KEY, CONFIGURATION_ID, DISPLAY_NUMBER, PHONE_NUMBER_ID, WABA_ID, WebhookApp

EVENTS = ["CALL_RECEIVED", "CALL_ESTABLISHED", "CALL_FINISHED", "CALL_FAILED"]


def server_config(data_dir: Path, port: int, graph_url: str, app_secret: str) -> dict[str, Any]:
    return {
        "server": {
            "host": "127.0.0.1",
            "port": port,
            "data_dir": str(data_dir),
            "allow_private_urls": True,
            "media_remote_networks": ["127.0.0.0/8"],
        },
        "api": {"keys": [API_KEY], "webhook_retry_base_delay_s": 0.2, "webhook_retry_max_delay_s": 1},
        "whatsapp": {"graph_retries": 1, "graph_timeout_s": 2.0},
        "whatsapp.senders": [
            {
                "phone_number_id": PHONE_NUMBER_ID,
                "display_phone_number": DISPLAY_NUMBER,
                "waba_id": WABA_ID,
                "access_token": "e2e-access-token",
                "app_secret": app_secret,
                "verify_token": "e2e-verify",
                "graph_api_url": graph_url,
                "inbound": {"action": "SUBSCRIPTION", "calls_configuration_id": CONFIGURATION_ID},
            }
        ],
    }


async def subscribe(api: httpx.AsyncClient, app: WebhookApp) -> None:
    await api.post("/calls/1/configurations", json={"id": CONFIGURATION_ID, "name": "faults"})
    body = {
        "name": "faults",
        "events": EVENTS,
        "criteria": [{"callsConfigurationId": CONFIGURATION_ID}],
        "profile": {"webhook": {"notifyUrl": app.url}},
    }
    assert (await api.post("/subscriptions/1/subscription/VOICE_VIDEO", json=body)).status_code == 201


def deliveries(app: WebhookApp) -> dict[tuple[str, str], set[str]]:
    """(event type, call id) → the distinct `X-Event-Id`s it arrived with."""
    seen: dict[tuple[str, str], set[str]] = defaultdict(set)
    for headers, body in app.raw:
        event = json.loads(body)
        seen[event["type"], event["callId"]].add(headers["x-event-id"])
    return seen
