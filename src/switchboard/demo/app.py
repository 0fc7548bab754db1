"""A sample Calls API application: what a business's own app looks like against Switchboard.

It is a separate HTTP service: it receives Infobip-shaped webhooks from the server and drives calls
through the REST API with an API key, exactly as it would against any Infobip-compatible platform.
Flow: answer, greet, capture digits ending with #, read them back, hang up.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from html import escape
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from switchboard.errors import SwitchboardError

log = logging.getLogger(__name__)

RECENT_EVENTS = 50
GREETING = "Welcome to Switchboard. Please enter some digits, then press the hash key."
CONFIGURATION_NAME = "Sample app"
SUBSCRIPTION_NAME = "sample app events"
SUBSCRIPTIONS = "/subscriptions/1/subscription/VOICE_VIDEO"
SUBSCRIBED_EVENTS = [
    "CALL_RECEIVED",
    "CALL_ESTABLISHED",
    "CALL_FINISHED",
    "CALL_FAILED",
    "SAY_FINISHED",
    "PLAY_FINISHED",
    "DTMF_CAPTURED",
]


class SetupError(SwitchboardError):
    """The server refused a set-up request; the message says which and why."""


def _raise_for_status(response: httpx.Response) -> None:
    if response.status_code >= 400:
        request = response.request
        raise SetupError(f"{request.method} {request.url.path} -> {response.status_code} {response.text}")


def _is_ours(subscription: dict[str, Any], configuration_id: str) -> bool:
    """A subscription this app made: its name, for its calls configuration."""
    criteria = subscription.get("criteria") or []
    return subscription.get("name") == SUBSCRIPTION_NAME and any(
        c.get("callsConfigurationId") == configuration_id for c in criteria
    )


@dataclass
class SampleApp:
    api_url: str
    api_key: str
    events: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=RECENT_EVENTS))
    received: int = 0
    http: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=10))

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"App {self.api_key}"}

    async def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, **params: int
    ) -> httpx.Response:
        url = f"{self.api_url}{path}"
        return await self.http.request(method, url, json=body, params=params, headers=self._headers())

    async def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.request("POST", path, body or {})
        if response.status_code >= 400:
            log.warning("POST %s -> %s %s", path, response.status_code, response.text)
        data = response.json() if response.content else {}
        return data if isinstance(data, dict) else {}

    async def setup(self, notify_url: str, configuration_id: str = "sample-app") -> None:
        """Make sure the calls configuration and the one subscription that sends its events to
        `notify_url` exist. Safe on every start against a kept database: what an earlier start made is
        found and updated, never added a second time (two subscriptions would deliver every event twice)."""
        await self._ensure_configuration(configuration_id)
        await self._ensure_subscription(notify_url, configuration_id)

    async def _ensure_configuration(self, configuration_id: str) -> None:
        path = f"/calls/1/configurations/{configuration_id}"
        response = await self.request("PUT", path, {"name": CONFIGURATION_NAME})
        if response.status_code == 404:
            response = await self.request(
                "POST", "/calls/1/configurations", {"id": configuration_id, "name": CONFIGURATION_NAME}
            )
        _raise_for_status(response)

    async def _ensure_subscription(self, notify_url: str, configuration_id: str) -> None:
        body = {
            "name": SUBSCRIPTION_NAME,
            "events": SUBSCRIBED_EVENTS,
            "criteria": [{"callsConfigurationId": configuration_id}],
            "profile": {"webhook": {"notifyUrl": notify_url}},
        }
        ours = [s for s in await self._subscriptions() if _is_ours(s, configuration_id)]
        if not ours:
            _raise_for_status(await self.request("POST", SUBSCRIPTIONS, body))
            return
        keep, *duplicates = ours
        _raise_for_status(await self.request("PUT", f"{SUBSCRIPTIONS}/{keep['subscriptionId']}", body))
        for duplicate in duplicates:
            path = f"{SUBSCRIPTIONS}/{duplicate['subscriptionId']}"
            _raise_for_status(await self.request("DELETE", path))

    async def _subscriptions(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        page = 0
        while True:
            response = await self.request("GET", SUBSCRIPTIONS, page=page, size=100)
            _raise_for_status(response)
            data = response.json()
            found.extend(data["results"])
            page += 1
            if page >= data["paging"]["totalPages"]:
                return found

    async def handle(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        self.received += 1
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


_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Switchboard sample app</title>
<style>body {{ font-family: sans-serif; max-width: 50rem; margin: 2rem auto; }}
td, th {{ text-align: left; padding: 0 .6em; }}
code {{ background: #f3f3f3; padding: 0 .2em; }}</style></head>
<body>
<h1>Switchboard sample app</h1>
<p>A business's own app, driving calls through the Calls API at <code>{api_url}</code>: it answers,
greets the caller, captures digits ending with #, reads them back and hangs up.</p>
<p>The server sends this app's events to <code>POST /events</code>
(<a href="/events">the last {recent} as JSON</a>). Events received: {received}.</p>
<table><tr><th>event</th><th>call</th><th>time</th></tr>{rows}</table>
</body>
</html>
"""


def _row(event: dict[str, Any]) -> str:
    cells = (event.get("type"), event.get("callId"), event.get("timestamp"))
    return "<tr>" + "".join(f"<td>{escape(str(c or ''))}</td>" for c in cells) + "</tr>"


def create_app(sample: SampleApp) -> FastAPI:
    app = FastAPI(title="Switchboard sample app")

    @app.get("/", include_in_schema=False)
    async def home() -> HTMLResponse:
        rows = "".join(_row(e) for e in reversed(sample.events)) or "<tr><td>none yet</td></tr>"
        page = _PAGE.format(
            api_url=escape(sample.api_url), recent=RECENT_EVENTS, received=sample.received, rows=rows
        )
        return HTMLResponse(page)

    @app.get("/events")
    async def recent_events() -> dict[str, Any]:
        return {"received": sample.received, "recent": list(sample.events)}

    @app.post("/events")
    async def events(request: Request) -> dict[str, str]:
        await sample.handle(await request.json())
        return {"status": "ok"}

    return app
