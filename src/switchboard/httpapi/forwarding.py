"""A call's API requests reach the node that carries the call (`ForwardingMiddleware`).

With several nodes on one database, an application may send `/calls/1/calls/{callId}/...`,
`/calls/1/dialogs/{dialogId}/...` or a new dialog (`POST /calls/1/dialogs`, by its `parentCallId`) to
any of them. A node that does not carry the call (it is live on
another node, by `calls.node_id`) passes the request on to the carrier's internal URL with the same
method, path, query, headers (the API key included) and body, and answers with the carrier's answer.
When the carrier stopped answering, an action gets a 503 saying so (its calls are being ended by a live
node) and a read is answered here from the database. A forwarded request carries
`X-Switchboard-Forwarded-By` and is never forwarded again.

Only requests with a valid application key are forwarded (others are answered here: 401/403), and
nothing is looked up for a call live on this node.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from switchboard.core.nodes import CallOwner, CallOwners
from switchboard.httpapi.errors import error_response

log = logging.getLogger(__name__)

FORWARDED_BY = "x-switchboard-forwarded-by"
_CALL = re.compile(r"^/calls/1/calls/(?P<id>[^/]+)(?:/.*)?$")
_DIALOG = re.compile(r"^/calls/1/dialogs/(?P<id>[^/]+)(?:/.*)?$")
_DIALOG_OF_CALLS = re.compile(r"^/calls/1/dialogs/parent-call/(?P<id>[^/]+)/child-call/[^/]+$")
_NOT_IDS = {"history", "parent-call"}
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "host", "content-length"}


class ForwardingMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        owners: CallOwners,
        http: httpx.AsyncClient,
        is_local: Callable[[str], bool],
        authorized: Callable[[Request], bool],
        timeout_s: float = 30.0,
    ) -> None:
        self.app = app
        self._owners = owners
        self._http = http
        self._is_local = is_local
        self._authorized = authorized
        self._timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith("/calls/1/"):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        body: list[bytes] = []
        owner = await self._owner(request, body)
        response = None if owner is None else await self._forward(request, owner)
        if response is None:
            await self.app(scope, _replay(request, body[0]) if body else receive, send)
            return
        await response(scope, receive, send)

    async def _owner(self, request: Request, body: list[bytes]) -> CallOwner | None:
        """The other node that carries the request's call; `body` gets the body if it was read."""
        if FORWARDED_BY in request.headers:
            return None
        path = request.url.path
        if (match := _DIALOG_OF_CALLS.match(path) or _CALL.match(path)) and match["id"] not in _NOT_IDS:
            call_id = match["id"]
            if self._is_local(call_id) or not self._authorized(request):
                return None
            return await self._owners.of_call(call_id)
        if path == "/calls/1/dialogs" and request.method == "POST":
            if not self._authorized(request):
                return None
            body.append(await request.body())
            parent = _parent_call_id(body[0])
            if parent is None or self._is_local(parent):
                return None
            return await self._owners.of_call(parent)
        if (match := _DIALOG.match(path)) and match["id"] not in _NOT_IDS:
            if not self._authorized(request):
                return None
            return await self._owners.of_dialog(match["id"])
        return None

    async def _forward(self, request: Request, owner: CallOwner) -> Response | None:
        """The carrier's answer, or an error; None: answer a read here (the carrier is gone)."""
        what = request.url.path
        reading = request.method == "GET"
        if reading and (not owner.alive or owner.url is None):
            return None
        if not owner.alive or owner.url is None:
            return error_response(
                503,
                f"{what}: the call is carried by node {owner.node_id}, which stopped answering; "
                "the call is being ended",
            )
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        headers[FORWARDED_BY] = self._owners.node_id
        url = owner.url.rstrip("/") + request.url.path
        if request.url.query:
            url += "?" + request.url.query
        try:
            answer = await self._http.request(
                request.method,
                url,
                content=None if reading else await request.body(),
                headers=headers,
                timeout=self._timeout_s,
            )
        except httpx.HTTPError as exc:
            level = logging.INFO if reading else logging.WARNING
            log.log(level, "forwarding %s %s to node %s failed: %s", request.method, what, owner.node_id, exc)
            if reading:
                return None
            return error_response(
                503,
                f"{what}: the call is carried by node {owner.node_id}, which could not be reached "
                f"({type(exc).__name__}); try again",
            )
        kept = {
            k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP | {"content-encoding"}
        }
        return Response(answer.content, status_code=answer.status_code, headers=kept)


def _parent_call_id(body: bytes) -> str | None:
    """`parentCallId` of a dialog request, if the body names one (else the route answers the error)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    parent = data.get("parentCallId") if isinstance(data, dict) else None
    return parent if isinstance(parent, str) and parent else None


def _replay(request: Request, body: bytes) -> Receive:
    """A `receive` that gives the body already read from `request`, for the app behind."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return await request.receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
