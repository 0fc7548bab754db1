"""`CallRouting`: the Call Routing API's routes (`router`)."""

from __future__ import annotations

from fastapi import APIRouter

from switchboard.apps.routing.api import build_router
from switchboard.apps.routing.book import RouteBook
from switchboard.apps.routing.ports import RecordingRepository, RouteRepository
from switchboard.httpapi.urls import UrlPolicy


class CallRouting:
    def __init__(self, routes: RouteRepository, recordings: RecordingRepository, *, urls: UrlPolicy) -> None:
        self._book = RouteBook(routes)
        self._recordings = recordings
        self.router: APIRouter = build_router(self._book, recordings, urls)
