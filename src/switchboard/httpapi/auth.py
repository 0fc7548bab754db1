"""API keys: `Authorization: App <key>` on every API route (Infobip's scheme); `Basic` is accepted too.

A key carries scopes: `admin` for the senders admin API (which holds the senders' Meta tokens),
`application` for everything an application uses. An unknown key is a 401; a known key without the
route's scope is a 403 that names the scope.
"""

from __future__ import annotations

import base64
import enum
import hmac
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

from fastapi import Request

from switchboard.httpapi.errors import ApiError


class Scope(enum.StrEnum):
    ADMIN = "admin"
    APPLICATION = "application"


@dataclass(frozen=True, slots=True)
class ApiKey:
    key: str
    scopes: frozenset[Scope]

    @classmethod
    def of(cls, key: str, scopes: Iterable[str]) -> ApiKey:
        return cls(key, frozenset(Scope(s) for s in scopes))


def _credential(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    credential = credential.strip()
    if not credential:
        return None
    if scheme.lower() == "app":
        return credential
    if scheme.lower() == "basic":
        try:
            _, _, password = base64.b64decode(credential).decode().partition(":")
        except ValueError:
            return None
        return password or None
    return None


def _matcher(keys: Sequence[ApiKey]) -> Callable[[str], ApiKey | None]:
    encoded = [(k.key.encode(), k) for k in keys]

    def known(candidate: str) -> ApiKey | None:
        value = candidate.encode()
        found = None
        for key, item in encoded:  # compare with every key, so timing tells nothing of which matched
            if hmac.compare_digest(value, key):
                found = item
        return found

    return known


def api_key_check(keys: Sequence[ApiKey], scope: Scope) -> Callable[[Request], bool]:
    """Whether a request carries one of `keys` that has `scope` (for middleware, before routing)."""
    known = _matcher(keys)

    def allowed(request: Request) -> bool:
        credential = _credential(request)
        found = known(credential) if credential else None
        return found is not None and scope in found.scopes

    return allowed


def api_key_dependency(keys: Sequence[ApiKey], scope: Scope) -> Callable[[Request], Awaitable[None]]:
    """A FastAPI dependency that admits a request carrying one of `keys` that has `scope`."""
    known = _matcher(keys)

    async def require_api_key(request: Request) -> None:
        credential = _credential(request)
        found = known(credential) if credential else None
        if found is None:
            raise ApiError(401, "missing or invalid API key: send 'Authorization: App <api key>'")
        if scope not in found.scopes:
            raise ApiError(
                403,
                f"this API key may not use {request.url.path}: that needs a key with the '{scope}' scope "
                "([api] keys, or [[api.key]] with scopes)",
            )

    return require_api_key
