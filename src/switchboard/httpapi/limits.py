"""Request body limits, enforced before and while a body is read, for every route.

A body whose `Content-Length` is over its route's limit is refused before a byte of it is read; a chunked
(or dishonest) one is counted as it arrives and refused as soon as it passes the limit, so no request can
make the server hold more than its route's limit in memory. Refusals are 413 in Infobip's error shape and
name the limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from switchboard.httpapi.errors import error_response

MEGABYTE = 1024 * 1024
MAX_API_BODY = MEGABYTE
"""The largest JSON body an API route takes; the largest real one is a few kilobytes."""


def describe_size(limit: int) -> str:
    if limit >= MEGABYTE and limit % MEGABYTE == 0:
        return f"{limit // MEGABYTE} MB ({limit} bytes)"
    return f"{limit} bytes"


@dataclass(frozen=True, slots=True)
class BodyLimit:
    """The largest body `method path` takes; `field` names it in the refusal, `setting` says where to
    change it, if it can be changed."""

    method: str
    path: str
    limit: int
    field: str = "body"
    setting: str | None = None

    def text(self) -> str:
        where = f"; {self.setting} sets it" if self.setting else ""
        return f"{self.field}: the request body is larger than {describe_size(self.limit)}, the limit{where}"


class BodyTooLarge(HTTPException):
    """Raised from `receive` once a body passes its limit. An `HTTPException`, so FastAPI's body reading
    passes it on to the error handlers instead of calling it a parse error."""

    def __init__(self, rule: BodyLimit) -> None:
        super().__init__(413, rule.text())


class BodyLimitMiddleware:
    """ASGI middleware applying `limits` (first match on method and exact path), `default` elsewhere."""

    def __init__(self, app: ASGIApp, *, limits: Sequence[BodyLimit], default: int = MAX_API_BODY) -> None:
        self.app = app
        self._limits = {(rule.method, rule.path): rule for rule in limits}
        self._default = default

    def _rule(self, scope: Scope) -> BodyLimit:
        method, path = str(scope.get("method", "")), str(scope.get("path", ""))
        return self._limits.get((method, path)) or BodyLimit(method, path, self._default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rule = self._rule(scope)
        declared = _content_length(scope)
        if declared is not None and declared > rule.limit:
            await _refuse(rule, scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > rule.limit:
                    raise BodyTooLarge(rule)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await _refuse(rule, scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


async def _refuse(rule: BodyLimit, scope: Scope, receive: Receive, send: Send) -> None:
    await error_response(413, rule.text())(scope, receive, send)
