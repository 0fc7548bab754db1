"""API keys: `Authorization: App <key>` on every API route (Infobip's scheme); `Basic` is accepted too."""

from __future__ import annotations

import base64
import hmac
from collections.abc import Awaitable, Callable, Sequence

from fastapi import Request

from switchboard.httpapi.errors import ApiError


def api_key_dependency(keys: Sequence[str]) -> Callable[[Request], Awaitable[None]]:
    """A FastAPI dependency that admits a request carrying one of `keys`."""
    encoded = [k.encode() for k in keys]

    def known(candidate: str) -> bool:
        value = candidate.encode()
        return any(hmac.compare_digest(value, key) for key in encoded)

    async def require_api_key(request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, credential = header.partition(" ")
        credential = credential.strip()
        if scheme.lower() == "app" and credential and known(credential):
            return
        if scheme.lower() == "basic" and credential:
            try:
                _, _, password = base64.b64decode(credential).decode().partition(":")
            except ValueError:
                password = ""
            if password and known(password):
                return
        raise ApiError(401, "missing or invalid API key: send 'Authorization: App <api key>'")

    return require_api_key
