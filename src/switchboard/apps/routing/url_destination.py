"""A URL destination: the platform POSTs the call to the customer's URL, and the answer names the endpoint
to try (`{"type": "ENDPOINT", "value": {...}, "connectTimeout", "recording"}`).

The request is signed per the destination's `securityConfig`, as the Calls API signs its webhooks:
BASIC is `Authorization: Basic base64(username:password)`; HMAC is `X-HMAC-Signature` = `X-Signature` =
`<alg>=<hex HMAC(secretKey, body)>` over the exact body bytes, with `X-Timestamp` (unix seconds).
"""

from __future__ import annotations

import base64
import hmac
import time

import httpx
from pydantic import ValidationError

from switchboard.apps.routing.schemas import (
    BasicSecurityConfig,
    HmacSecurityConfig,
    UrlDestination,
    UrlDestinationRequest,
    UrlDestinationResponse,
)

TIMEOUT_S = 10.0
MAX_REPLY = 64 * 1024
DIGESTS = {
    "HMAC_MD5": "md5",
    "HMAC_SHA_1": "sha1",
    "HMAC_SHA_224": "sha224",
    "HMAC_SHA_256": "sha256",
    "HMAC_SHA_384": "sha384",
    "HMAC_SHA_512": "sha512",
}


class UrlDestinationFailed(Exception):
    """The URL did not name a destination (unreachable, an error status, or an answer we cannot use)."""


def signed_headers(
    body: bytes, config: BasicSecurityConfig | HmacSecurityConfig | None, now: float
) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if isinstance(config, BasicSecurityConfig):
        token = base64.b64encode(f"{config.username}:{config.password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    elif isinstance(config, HmacSecurityConfig):
        digest = DIGESTS[config.algorithm.value]
        signature = f"{digest}={hmac.new(config.secret_key.encode(), body, digest).hexdigest()}"
        headers.update(
            {"X-HMAC-Signature": signature, "X-Signature": signature, "X-Timestamp": str(int(now))}
        )
    return headers


async def ask(
    http: httpx.AsyncClient, destination: UrlDestination, request: UrlDestinationRequest
) -> UrlDestinationResponse:
    """POST `request` to the destination's URL; the endpoint its answer names."""
    body = request.model_dump_json(by_alias=True).encode()
    headers = signed_headers(body, destination.security_config, time.time())
    try:
        response = await http.post(destination.url, content=body, headers=headers, timeout=TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise UrlDestinationFailed(f"{destination.url} could not be reached: {exc}") from None
    if response.status_code != 200:
        raise UrlDestinationFailed(f"{destination.url} answered {response.status_code}")
    if len(response.content) > MAX_REPLY:
        raise UrlDestinationFailed(f"{destination.url} answered more than {MAX_REPLY} bytes")
    try:
        return UrlDestinationResponse.model_validate_json(response.content)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise UrlDestinationFailed(
            f"{destination.url} answered no usable destination ({where}: {first['msg']})"
        ) from None
