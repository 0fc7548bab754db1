"""A sample Calls API application: what a business's own app looks like against Switchboard.

It is a separate HTTP service: it receives Infobip-shaped webhooks from the server and drives calls
through the REST API with an API key, exactly as it would against any Infobip-compatible platform.
Flow: answer, greet, play a short tone, capture digits ending with #, read them back, hang up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI, Request

log = logging.getLogger(__name__)

GREETING = "Welcome to Switchboard. Please enter some digits, then press the hash key."


@dataclass
class SampleApp:
    api_url: str
    api_key: str
    events: list[dict[str, Any]] = field(default_factory=list)
    http: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=10))

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"App {self.api_key}"}

    async def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.http.post(f"{self.api_url}{path}", json=body or {}, headers=self._headers())
        if response.status_code >= 400:
            log.warning("POST %s -> %s %s", path, response.status_code, response.text)
        data = response.json() if response.content else {}
        return data if isinstance(data, dict) else {}

    async def setup(self, notify_url: str, configuration_id: str = "sample-app") -> None:
        """Create the calls configuration and the subscription that sends its events to us."""
        await self.post("/calls/1/configurations", {"id": configuration_id, "name": "Sample app"})
        await self.post(
            "/subscriptions/1/subscription/VOICE_VIDEO",
            {
                "name": "sample app events",
                "events": [
                    "CALL_RECEIVED",
                    "CALL_ESTABLISHED",
                    "CALL_FINISHED",
                    "CALL_FAILED",
                    "SAY_FINISHED",
                    "PLAY_FINISHED",
                    "DTMF_CAPTURED",
                ],
                "criteria": [{"callsConfigurationId": configuration_id}],
                "profile": {"webhook": {"notifyUrl": notify_url}},
            },
        )

    async def handle(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        call_id = event.get("callId", "")
        kind = event.get("type")
        props = event.get("properties") or {}
        base = f"/calls/1/calls/{call_id}"
        if kind == "CALL_RECEIVED":
            await self.post(f"{base}/answer")
        elif kind == "CALL_ESTABLISHED":
            await self.post(
                f"{base}/say", {"text": GREETING, "language": "en", "customData": {"step": "greeting"}}
            )
        elif kind == "SAY_FINISHED" and (props.get("customData") or {}).get("step") == "greeting":
            await self.post(f"{base}/capture/dtmf", {"maxLength": 10, "timeout": 20000, "terminator": "#"})
        elif kind == "DTMF_CAPTURED":
            digits = " ".join(props.get("dtmf") or "") or "nothing"
            await self.post(
                f"{base}/say",
                {"text": f"You entered {digits}. Goodbye.", "language": "en", "customData": {"step": "bye"}},
            )
        elif kind == "SAY_FINISHED" and (props.get("customData") or {}).get("step") == "bye":
            await self.post(f"{base}/hangup")


def create_app(sample: SampleApp) -> FastAPI:
    app = FastAPI(title="Switchboard sample app")

    @app.post("/events")
    async def events(request: Request) -> dict[str, str]:
        await sample.handle(await request.json())
        return {"status": "ok"}

    return app
