"""What the routing application needs from the store, as protocols (the store implements them).

Routes are kept with `order` unique and dense (1..N): creating appends, deleting closes the gap and
moving one shifts the others. Criteria and destinations are kept as the JSON the API validated.
The records are the store's plain dataclasses (`store.routing`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from switchboard.store.routing import RecordingFilter, RecordingRow, RouteRecord


class RouteRepository(Protocol):
    async def create(
        self,
        route_id: str,
        name: str,
        criteria: Sequence[Mapping[str, Any]],
        destinations: Sequence[Mapping[str, Any]],
    ) -> RouteRecord:
        """Store a new ENABLED route after every other one (the highest order)."""

    async def all(self) -> Sequence[RouteRecord]:
        """Every route by order (read for every routed call: cached, and fresh after a change here)."""

    async def page(
        self, *, name_contains: str | None, page: int, size: int
    ) -> tuple[Sequence[RouteRecord], int]: ...

    async def get(self, route_id: str) -> RouteRecord | None: ...

    async def update(
        self,
        route_id: str,
        name: str,
        criteria: Sequence[Mapping[str, Any]],
        destinations: Sequence[Mapping[str, Any]],
    ) -> RouteRecord | None: ...

    async def delete(self, route_id: str) -> RouteRecord | None:
        """Remove the route and close the gap in the order; the removed route, or None."""

    async def set_order(self, route_id: str, order: int) -> RouteRecord | None:
        """Move the route to `order` (at most the number of routes), shifting the ones between."""

    async def set_status(self, route_id: str, status: str) -> RouteRecord | None: ...


class RecordingRepository(Protocol):
    async def add(self, row: RecordingRow) -> None: ...

    async def search(
        self, where: RecordingFilter, *, sort_by: str, descending: bool, page: int, size: int
    ) -> tuple[Sequence[Sequence[RecordingRow]], int]:
        """Recordings grouped by correlation id (one group a routed call), a page of groups, and how many
        groups match."""

    async def file(self, file_id: str) -> RecordingRow | None: ...

    async def delete(self, correlation_id: str) -> Sequence[RecordingRow]:
        """Forget a routed call's recordings; the ones forgotten (their files are the caller's to remove)."""
