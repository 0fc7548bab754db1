"""`CallsApi`: the Infobip-compatible Calls API application, composed from its routers and its outbox.

The composition root wires it:

    api = CallsApi(control, db, http, files_dir=..., urls=UrlPolicy(...))
    control.register_application(api)                # takes calls handed to a SUBSCRIPTION
    bus.subscribe(api.on_event)                      # events become outbox rows before publish returns
    app.include_router(api.router, dependencies=[Depends(require_api_key)])
    task_group.create_task(api.run())                # the webhook delivery loop; cancelled on shutdown
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi import APIRouter
from sqlalchemy import insert

from switchboard.apps.calls_api import calls, configurations, files
from switchboard.apps.calls_api.configuration_ids import ConfigurationIds
from switchboard.apps.calls_api.context import Context
from switchboard.apps.calls_api.mapping import (
    endpoint_model,
    envelope,
    event_configurations,
    event_name,
    platform_model,
)
from switchboard.apps.calls_api.outbox import Outbox, RetryPolicy
from switchboard.apps.calls_api.schemas import CallRecordingModel, RecordingFileModel
from switchboard.apps.calls_api.subscriptions import SubscriptionIndex, Target
from switchboard.core import events as ev
from switchboard.core.control import CallControl
from switchboard.core.models import InboundAction, InboundTarget
from switchboard.httpapi.urls import UrlPolicy
from switchboard.store.base import Database, upsert
from switchboard.store.calls_api import (
    CallRecordingRow,
    WebhookOutboxRow,
)
from switchboard.store.writes import Step

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


class CallsApi:
    """REST routes (`router`), the event handler (`on_event`) and the delivery loop (`run`)."""

    def __init__(
        self,
        control: CallControl,
        db: Database,
        http: httpx.AsyncClient,
        *,
        files_dir: Path,
        urls: UrlPolicy,
        clock: Callable[[], datetime] = utcnow,
        retry: RetryPolicy | None = None,
        node_id: str = "node",
    ) -> None:
        self._control = control
        self._insert_outbox = insert(WebhookOutboxRow)
        recording_columns = [c.name for c in CallRecordingRow.__table__.columns if c.name != "id"]
        self._upsert_recording = upsert(db.dialect, CallRecordingRow, key=["id"], update=recording_columns)
        self._subscriptions = SubscriptionIndex(db)
        self._outbox = Outbox(
            db,
            http,
            profiles=self._subscriptions.profile,
            urls=urls,
            clock=clock,
            retry=retry or RetryPolicy(),
            owner=node_id,
        )
        self._ctx = Context(
            control=control,
            db=db,
            http=http,
            files_dir=files_dir,
            urls=urls,
            clock=clock,
            subscriptions=self._subscriptions,
            configurations=ConfigurationIds(db),
            outbox=self._outbox,
        )
        self.router = APIRouter()
        self.router.include_router(configurations.build_router(self._ctx))
        self.router.include_router(calls.build_router(self._ctx))
        self.router.include_router(files.build_router(self._ctx))

    action = InboundAction.SUBSCRIPTION
    """The inbound action this application takes (`core.ports.Application`)."""

    async def refusal(self, target: InboundTarget) -> str | None:
        if not target.id:
            return "the target names no calls configuration"
        if not await self._ctx.configurations.exists(target.id):
            return f"calls configuration {target.id!r} does not exist"
        return None

    async def run(self) -> None:
        """The webhook delivery loop; the composition root owns and cancels it."""
        await self._outbox.run()

    async def on_event(self, event: ev.CallEvent) -> None:
        """Store what `event` means for the Calls API: recordings, and one outbox row per subscription
        that wants it. Everything is committed before this returns; then delivery starts."""
        name = event_name(event)
        wanting: dict[str, Target] = {}
        if name:
            for configuration_id in event_configurations(event):
                for target in await self._subscriptions.matching(configuration_id, name):
                    wanting.setdefault(target.id, target)
        targets = list(wanting.values())
        if not targets and not isinstance(event, ev.RecordingReady):
            return
        now = self._ctx.clock()
        steps: list[Step] = []
        extra = None
        if isinstance(event, ev.RecordingReady):
            recording, extra = self._recording(event)
            steps.append(Step(self._upsert_recording, recording))
        rows: list[dict[str, Any]] = []
        if targets and name:
            body = envelope(event, name, extra).model_dump_json(by_alias=True)
            rows = [
                {
                    "subscription_id": target.id,
                    "url": target.url,
                    "event_type": name,
                    "call_id": event.call.id,
                    "body": body,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for target in targets
            ]
            steps.append(Step(self._insert_outbox, rows))
        await self._outbox.write(*steps)

    def _recording(self, event: ev.RecordingReady) -> tuple[dict[str, Any], dict[str, Any]]:
        """The recording's row, and what its event's webhook adds (`recording`)."""
        call = event.call
        fmt = "OGG" if event.path.suffix.lower() in (".ogg", ".opus") else "WAV"
        duration = round(event.duration_ms / 1000)
        end = event.timestamp
        row = {
            "id": event.recording_id,
            "call_id": call.id,
            "calls_configuration_id": call.calls_configuration_id,
            "path": str(event.path),
            "file_format": fmt,
            "duration": duration,
            "size": event.size,
            "custom_data": json.dumps(event.custom_data),
            "start_time": None,
            "end_time": end,
        }
        recording = CallRecordingModel(
            call_id=call.id,
            endpoint=endpoint_model(call.endpoint),
            direction=call.direction,
            files=[
                RecordingFileModel(
                    id=event.recording_id,
                    name=event.path.name,
                    file_format=fmt,
                    size=event.size,
                    creation_time=end,
                    duration=duration,
                    end_time=end,
                    custom_data=dict(event.custom_data) or None,
                )
            ],
            calls_configuration_id=call.calls_configuration_id,
            platform=platform_model(call),
            end_time=end,
        )
        return row, {"recording": recording.model_dump(mode="json", by_alias=True, exclude_none=True)}
