"""Calls configurations (`/calls/1/configurations`) and VOICE_VIDEO subscriptions (`/subscriptions/1`).

A calls configuration stands for one Calls API application; a subscription says which of its events go
to which webhook, and how they are signed.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi import APIRouter, Response
from sqlalchemy import func, select, update

from switchboard.apps.calls_api.context import Context, PageParam, SizeParam
from switchboard.apps.calls_api.schemas import (
    CallsConfigurationCreateRequest,
    CallsConfigurationPage,
    CallsConfigurationResponse,
    CallsConfigurationUpdateRequest,
    Paging,
    SubscriptionPage,
    SubscriptionRequest,
    SubscriptionResponse,
)
from switchboard.httpapi.errors import ApiError
from switchboard.httpapi.urls import UnsafeUrl
from switchboard.store.calls_api import CallsConfigurationRow, SubscriptionRow, WebhookOutboxRow

SUBSCRIPTIONS = "/subscriptions/1/subscription/VOICE_VIDEO"


def _config(row: CallsConfigurationRow) -> CallsConfigurationResponse:
    return CallsConfigurationResponse(id=row.id, name=row.name)


MASK = "********"
"""Stands for a custom header's value in answers; sent back unchanged (PUT), it keeps the stored value."""


def _public_profile(profile: dict[str, Any]) -> dict[str, Any]:
    """The profile without secrets: passwords and HMAC keys are write-only, custom header values masked."""
    out: dict[str, Any] = json.loads(json.dumps(profile))
    security = out.get("security") or {}
    creds = security.get("credentials") or {}
    for secret in ("password", "secretKey"):
        creds.pop(secret, None)
    webhook = out.get("webhook") or {}
    if isinstance(webhook.get("headers"), dict):
        webhook["headers"] = dict.fromkeys(webhook["headers"], MASK)
    return out


def _subscription(row: SubscriptionRow) -> SubscriptionResponse:
    return SubscriptionResponse(
        subscription_id=row.id,
        name=row.name,
        events=json.loads(row.events),
        criteria=json.loads(row.criteria),
        profile=_public_profile(json.loads(row.profile)),
    )


def build_router(ctx: Context) -> APIRouter:
    router = APIRouter()

    async def configuration_exists(config_id: str) -> bool:
        return await ctx.configurations.exists(config_id)

    # -- calls configurations ---------------------------------------------------------------------

    @router.post(
        "/calls/1/configurations",
        status_code=201,
        response_model=CallsConfigurationResponse,
        tags=["calls configurations"],
        summary="Create a calls configuration",
    )
    async def create_configuration(body: CallsConfigurationCreateRequest) -> CallsConfigurationResponse:
        config_id = body.id or str(uuid.uuid4())
        async with ctx.db.session() as s:
            if await s.get(CallsConfigurationRow, config_id) is not None:
                raise ApiError(409, f"calls configuration {config_id!r} already exists")
            row = CallsConfigurationRow(id=config_id, name=body.name, created_at=ctx.clock())
            s.add(row)
        ctx.configurations.invalidate()
        return _config(row)

    @router.get(
        "/calls/1/configurations",
        response_model=CallsConfigurationPage,
        tags=["calls configurations"],
        summary="List calls configurations",
    )
    async def list_configurations(page: PageParam = 0, size: SizeParam = 20) -> CallsConfigurationPage:
        async with ctx.db.session() as s:
            total = await s.scalar(select(func.count()).select_from(CallsConfigurationRow)) or 0
            rows = await s.scalars(
                select(CallsConfigurationRow)
                .order_by(CallsConfigurationRow.created_at, CallsConfigurationRow.id)
                .offset(page * size)
                .limit(size)
            )
            results = [_config(r) for r in rows]
        return CallsConfigurationPage(results=results, paging=Paging.of(page, size, total))

    @router.get(
        "/calls/1/configurations/{callsConfigurationId}",
        response_model=CallsConfigurationResponse,
        tags=["calls configurations"],
        summary="Get a calls configuration",
    )
    async def get_configuration(callsConfigurationId: str) -> CallsConfigurationResponse:
        async with ctx.db.session() as s:
            row = await s.get(CallsConfigurationRow, callsConfigurationId)
            if row is None:
                raise ApiError(404, f"calls configuration {callsConfigurationId!r} not found")
            return _config(row)

    @router.put(
        "/calls/1/configurations/{callsConfigurationId}",
        response_model=CallsConfigurationResponse,
        tags=["calls configurations"],
        summary="Update a calls configuration",
    )
    async def update_configuration(
        callsConfigurationId: str,
        body: CallsConfigurationUpdateRequest,
    ) -> CallsConfigurationResponse:
        async with ctx.db.session() as s:
            row = await s.get(CallsConfigurationRow, callsConfigurationId)
            if row is None:
                raise ApiError(404, f"calls configuration {callsConfigurationId!r} not found")
            row.name = body.name
            return _config(row)

    @router.delete(
        "/calls/1/configurations/{callsConfigurationId}",
        response_model=CallsConfigurationResponse,
        tags=["calls configurations"],
        summary="Delete a calls configuration",
    )
    async def delete_configuration(callsConfigurationId: str) -> CallsConfigurationResponse:
        async with ctx.db.session() as s:
            row = await s.get(CallsConfigurationRow, callsConfigurationId)
            if row is None:
                raise ApiError(404, f"calls configuration {callsConfigurationId!r} not found")
            await s.delete(row)
        ctx.configurations.invalidate()
        return _config(row)

    # -- subscriptions ------------------------------------------------------------------------------

    async def validated(body: SubscriptionRequest) -> SubscriptionRequest:
        try:
            await ctx.urls.check_url(body.profile.webhook.notify_url, "profile.webhook.notifyUrl")
        except UnsafeUrl as exc:
            raise ApiError(400, str(exc)) from exc
        for i, criterion in enumerate(body.criteria):
            if not await configuration_exists(criterion.calls_configuration_id):
                raise ApiError(
                    400,
                    f"criteria.{i}.callsConfigurationId: calls configuration "
                    f"{criterion.calls_configuration_id!r} does not exist",
                )
        return body

    def columns(body: SubscriptionRequest, stored: SubscriptionRow | None = None) -> dict[str, str]:
        profile = body.profile.model_dump(mode="json", by_alias=True, exclude_none=True)
        if body.profile.webhook.headers is not None:
            headers = body.profile.webhook.header_map()
            kept = (json.loads(stored.profile).get("webhook") or {}).get("headers") or {} if stored else {}
            profile["webhook"]["headers"] = {
                key: kept[key] if value == MASK and key in kept else value for key, value in headers.items()
            }
        return {
            "name": body.name,
            "events": json.dumps(body.events),
            "criteria": json.dumps(
                [c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in body.criteria]
            ),
            "profile": json.dumps(profile),
        }

    @router.post(
        SUBSCRIPTIONS,
        status_code=201,
        response_model=SubscriptionResponse,
        response_model_exclude_none=True,
        tags=["subscriptions"],
        summary="Create a VOICE_VIDEO subscription",
    )
    async def create_subscription(body: SubscriptionRequest) -> SubscriptionResponse:
        body = await validated(body)
        sub_id = body.subscription_id or str(uuid.uuid4())
        async with ctx.db.session() as s:
            if await s.get(SubscriptionRow, sub_id) is not None:
                raise ApiError(409, f"subscription {sub_id!r} already exists")
            row = SubscriptionRow(id=sub_id, created_at=ctx.clock(), **columns(body))
            s.add(row)
        ctx.subscriptions.invalidate()
        return _subscription(row)

    @router.get(
        SUBSCRIPTIONS,
        response_model=SubscriptionPage,
        response_model_exclude_none=True,
        tags=["subscriptions"],
        summary="List VOICE_VIDEO subscriptions",
    )
    async def list_subscriptions(page: PageParam = 0, size: SizeParam = 20) -> SubscriptionPage:
        async with ctx.db.session() as s:
            total = await s.scalar(select(func.count()).select_from(SubscriptionRow)) or 0
            rows = await s.scalars(
                select(SubscriptionRow)
                .order_by(SubscriptionRow.created_at, SubscriptionRow.id)
                .offset(page * size)
                .limit(size)
            )
            results = [_subscription(r) for r in rows]
        return SubscriptionPage(results=results, paging=Paging.of(page, size, total))

    @router.get(
        SUBSCRIPTIONS + "/{subscriptionId}",
        response_model=SubscriptionResponse,
        response_model_exclude_none=True,
        tags=["subscriptions"],
        summary="Get a VOICE_VIDEO subscription",
    )
    async def get_subscription(subscriptionId: str) -> SubscriptionResponse:
        async with ctx.db.session() as s:
            row = await s.get(SubscriptionRow, subscriptionId)
            if row is None:
                raise ApiError(404, f"subscription {subscriptionId!r} not found")
            return _subscription(row)

    @router.put(
        SUBSCRIPTIONS + "/{subscriptionId}",
        response_model=SubscriptionResponse,
        response_model_exclude_none=True,
        tags=["subscriptions"],
        summary="Replace a VOICE_VIDEO subscription",
    )
    async def update_subscription(
        subscriptionId: str,
        body: SubscriptionRequest,
    ) -> SubscriptionResponse:
        body = await validated(body)
        async with ctx.db.session() as s:
            row = await s.get(SubscriptionRow, subscriptionId)
            if row is None:
                raise ApiError(404, f"subscription {subscriptionId!r} not found")
            for key, value in columns(body, row).items():
                setattr(row, key, value)
            response = _subscription(row)
        ctx.subscriptions.invalidate()
        return response

    @router.delete(
        SUBSCRIPTIONS + "/{subscriptionId}",
        status_code=204,
        response_class=Response,
        tags=["subscriptions"],
        summary="Delete a VOICE_VIDEO subscription; its undelivered events are dropped",
    )
    async def delete_subscription(subscriptionId: str) -> Response:
        async with ctx.db.session() as s:
            row = await s.get(SubscriptionRow, subscriptionId)
            if row is None:
                raise ApiError(404, f"subscription {subscriptionId!r} not found")
            await s.delete(row)
            await s.execute(
                update(WebhookOutboxRow)
                .where(
                    WebhookOutboxRow.subscription_id == subscriptionId,
                    WebhookOutboxRow.delivered_at.is_(None),
                    WebhookOutboxRow.failed_at.is_(None),
                )
                .values(failed_at=ctx.clock(), last_error="the subscription was deleted")
            )
        ctx.subscriptions.invalidate()
        return Response(status_code=204)

    return router
