"""Routes as the application uses them: validated wire models over the stored JSON, secrets kept."""

from __future__ import annotations

from typing import Any

from switchboard.apps.routing.ports import RouteRepository
from switchboard.apps.routing.schemas import (
    MASK,
    BasicSecurityConfig,
    Destination,
    HmacSecurityConfig,
    RouteRequest,
    RouteResponse,
    UrlDestination,
)
from switchboard.store.routing import RouteRecord


def route_of(record: RouteRecord) -> RouteResponse:
    return RouteResponse.model_validate(
        {
            "id": record.id,
            "name": record.name,
            "status": record.status,
            "order": record.order,
            "criteria": list(record.criteria),
            "destinations": list(record.destinations),
        }
    )


def public(route: RouteResponse) -> RouteResponse:
    """The route as answered: a URL destination's password or HMAC key is masked."""
    return route.model_copy(update={"destinations": [_masked(d) for d in route.destinations]})


def _masked(destination: Destination) -> Destination:
    if not isinstance(destination, UrlDestination) or destination.security_config is None:
        return destination
    config = destination.security_config
    if isinstance(config, BasicSecurityConfig):
        hidden: BasicSecurityConfig | HmacSecurityConfig = config.model_copy(update={"password": MASK})
    else:
        hidden = config.model_copy(update={"secret_key": MASK})
    return destination.model_copy(update={"security_config": hidden})


def _secret(config: BasicSecurityConfig | HmacSecurityConfig) -> str:
    return config.password if isinstance(config, BasicSecurityConfig) else config.secret_key


def keep_secrets(request: RouteRequest, stored: RouteResponse | None) -> list[tuple[str, str]]:
    """Put back the stored secret wherever an update sent the mask; the violations where it cannot."""
    violations = []
    for index, destination in enumerate(request.destinations):
        if not isinstance(destination, UrlDestination):
            continue
        config = destination.security_config
        if config is None or _secret(config) != MASK:
            continue
        known = [
            d.security_config
            for d in (stored.destinations if stored else [])
            if isinstance(d, UrlDestination)
            and d.url == destination.url
            and d.security_config is not None
            and d.security_config.type == config.type
        ]
        if not known or known[0] is None:
            field = "password" if isinstance(config, BasicSecurityConfig) else "secretKey"
            violations.append(
                (
                    f"destinations[{index}].securityConfig.{field}",
                    "send the secret itself: no stored secret of this URL stands behind the mask",
                )
            )
            continue
        destination.security_config = known[0]
    return violations


def documents(request: RouteRequest) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The criteria and destinations as stored (JSON, `type` on every object)."""
    criteria = [c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in request.criteria or []]
    destinations = [d.model_dump(mode="json", by_alias=True, exclude_none=True) for d in request.destinations]
    return criteria, destinations


class RouteBook:
    def __init__(self, repository: RouteRepository) -> None:
        self.repository = repository

    async def all(self) -> list[RouteResponse]:
        """Every route, by order."""
        return [route_of(record) for record in await self.repository.all()]

    async def get(self, route_id: str) -> RouteResponse | None:
        record = await self.repository.get(route_id)
        return route_of(record) if record is not None else None
