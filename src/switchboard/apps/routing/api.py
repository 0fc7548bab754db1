"""The Call Routing API (`/callrouting/1`), Infobip-compatible: routes, their order and status, the
route simulator, and the recordings made on routed calls."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse

from switchboard.apps.routing.book import RouteBook, documents, keep_secrets, public, route_of
from switchboard.apps.routing.matching import CallFacts, choose_route
from switchboard.apps.routing.ports import RecordingRepository
from switchboard.apps.routing.recordings import recording_response
from switchboard.apps.routing.schemas import (
    Paging,
    RecordingPage,
    RecordingResponse,
    RouteOrderRequest,
    RoutePage,
    RouteRequest,
    RouteResponse,
    RouteStatusRequest,
    SimulateRequest,
    SimulatorSipEndpoint,
    SimulatorWebRtcEndpoint,
    SimulatorWhatsAppEndpoint,
    UrlDestination,
)
from switchboard.httpapi.errors import ApiError
from switchboard.httpapi.urls import UnsafeUrl, UrlPolicy
from switchboard.store.routing import RecordingFilter

PageParam = Annotated[int, Query(ge=0, le=2**31 - 1, description="Page number, from 0.")]
SizeParam = Annotated[int, Query(ge=1, le=1000, description="Results per page.")]
Filter = Annotated[str | None, Query(max_length=255)]


def not_found(route_id: str) -> ApiError:
    return ApiError(404, f"routeId: route {route_id!r} not found", violations=(("routeId", "not found"),))


def simulated_call(body: SimulateRequest) -> CallFacts:
    endpoint = body.endpoint
    facts = CallFacts(endpoint.type, endpoint.from_ or "", body.to or "")
    match endpoint:
        case SimulatorSipEndpoint():
            return replace(facts, sip_trunk_id=endpoint.sip_trunk_id, headers=endpoint.headers or {})
        case SimulatorWebRtcEndpoint() | SimulatorWhatsAppEndpoint():
            return replace(facts, custom_data=endpoint.custom_data or {})
    return facts


def build_router(book: RouteBook, recordings: RecordingRepository, urls: UrlPolicy) -> APIRouter:
    router = APIRouter(prefix="/callrouting/1", tags=["call routing"])
    repository = book.repository

    async def checked(body: RouteRequest, stored: RouteResponse | None) -> RouteRequest:
        violations = keep_secrets(body, stored)
        for index, destination in enumerate(body.destinations):
            if isinstance(destination, UrlDestination):
                name = f"destinations[{index}].url"
                try:
                    await urls.check_url(destination.url, name)
                except UnsafeUrl as exc:
                    violations.append((name, str(exc)))
        if violations:
            text = "; ".join(f"{name}: {text}" for name, text in violations)
            raise ApiError(400, text, violations=tuple(violations))
        return body

    @router.post("/routes", status_code=201, response_model=RouteResponse, response_model_exclude_none=True)
    async def create_route(body: RouteRequest) -> RouteResponse:
        body = await checked(body, None)
        criteria, destinations = documents(body)
        record = await repository.create(str(uuid.uuid4()), body.name, criteria, destinations)
        return public(route_of(record))

    @router.get("/routes", response_model=RoutePage, response_model_exclude_none=True)
    async def list_routes(
        nameContains: Filter = None, page: PageParam = 0, size: SizeParam = 20
    ) -> RoutePage:
        records, total = await repository.page(name_contains=nameContains, page=page, size=size)
        return RoutePage(results=[public(route_of(r)) for r in records], paging=Paging.of(page, size, total))

    @router.post("/routes/simulate", response_model=RouteResponse, response_model_exclude_none=True)
    async def simulate(body: SimulateRequest) -> RouteResponse:
        facts = simulated_call(body)
        route = choose_route(await book.all(), facts, use_disabled=body.use_disabled_routes)
        if route is None:
            raise ApiError(404, "no route matches the call", violations=(("endpoint", "no route matches"),))
        return public(route)

    @router.get("/routes/{routeId}", response_model=RouteResponse, response_model_exclude_none=True)
    async def get_route(routeId: str) -> RouteResponse:
        route = await book.get(routeId)
        if route is None:
            raise not_found(routeId)
        return public(route)

    @router.put("/routes/{routeId}", response_model=RouteResponse, response_model_exclude_none=True)
    async def update_route(routeId: str, body: RouteRequest) -> RouteResponse:
        stored = await book.get(routeId)
        if stored is None:
            raise not_found(routeId)
        body = await checked(body, stored)
        criteria, destinations = documents(body)
        record = await repository.update(routeId, body.name, criteria, destinations)
        if record is None:
            raise not_found(routeId)
        return public(route_of(record))

    @router.delete("/routes/{routeId}", response_model=RouteResponse, response_model_exclude_none=True)
    async def delete_route(routeId: str) -> RouteResponse:
        record = await repository.delete(routeId)
        if record is None:
            raise not_found(routeId)
        return public(route_of(record))

    @router.patch("/routes/{routeId}", response_model=RouteResponse, response_model_exclude_none=True)
    async def set_order(routeId: str, body: RouteOrderRequest) -> RouteResponse:
        record = await repository.set_order(routeId, body.order)
        if record is None:
            raise not_found(routeId)
        return public(route_of(record))

    @router.post("/routes/{routeId}/status", response_model=RouteResponse, response_model_exclude_none=True)
    async def set_status(routeId: str, body: RouteStatusRequest) -> RouteResponse:
        record = await repository.set_status(routeId, body.route_status.value)
        if record is None:
            raise not_found(routeId)
        return public(route_of(record))

    # -- recordings ------------------------------------------------------------------------------------

    @router.get("/recordings", response_model=RecordingPage, response_model_exclude_none=True)
    async def search_recordings(
        sortBy: Annotated[
            str, Query(pattern="^(ENDPOINT_TYPE|ROUTE_ID|CORRELATION_ID|START_TIME|END_TIME)$")
        ] = "END_TIME",
        sortDirection: Annotated[str, Query(pattern="^(ASC|DESC)$")] = "DESC",
        endpointType: Annotated[
            str | None, Query(pattern="^(PHONE|SIP|WEBRTC|VIBER|WHATSAPP|WEBSOCKET)$")
        ] = None,
        phoneNumber: Filter = None,
        sipTrunkId: Filter = None,
        sipUsername: Filter = None,
        webrtcIdentity: Filter = None,
        routeId: Filter = None,
        routeName: Filter = None,
        correlationId: Filter = None,
        startTimeAfter: datetime | None = None,
        startTimeBefore: datetime | None = None,
        location: Filter = None,
        page: PageParam = 0,
        size: SizeParam = 20,
    ) -> RecordingPage:
        where = RecordingFilter(
            endpoint_type=endpointType,
            phone_number=phoneNumber,
            sip_trunk_id=sipTrunkId,
            sip_username=sipUsername,
            webrtc_identity=webrtcIdentity,
            route_id=routeId,
            route_name=routeName,
            correlation_id=correlationId,
            start_after=startTimeAfter,
            start_before=startTimeBefore,
        )
        groups, total = await recordings.search(
            where, sort_by=sortBy, descending=sortDirection == "DESC", page=page, size=size
        )
        return RecordingPage(
            results=[recording_response(group) for group in groups], paging=Paging.of(page, size, total)
        )

    @router.delete("/recordings", response_model=RecordingResponse, response_model_exclude_none=True)
    async def delete_recordings(
        correlationId: Annotated[str, Query(min_length=1, max_length=255)], location: Filter = None
    ) -> RecordingResponse:
        deleted = await recordings.delete(correlationId)
        if not deleted:
            raise ApiError(404, f"correlationId: no recordings of {correlationId!r}")
        for row in deleted:
            await asyncio.to_thread(Path(row.path).unlink, missing_ok=True)
        return recording_response(deleted)

    @router.get("/recordings/files/{fileId}", response_class=FileResponse)
    async def download_file(fileId: str, location: Filter = None) -> FileResponse:
        row = await recordings.file(fileId)
        if row is None or not await asyncio.to_thread(Path(row.path).is_file):
            raise ApiError(404, f"fileId: recording file {fileId!r} not found")
        media_type = "audio/wav" if row.file_format == "WAV" else "audio/mpeg"
        return FileResponse(row.path, media_type=media_type, filename=Path(row.path).name)

    return router
