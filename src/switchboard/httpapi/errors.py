"""Infobip's error shapes, and the handlers that render every error in them.

Calls, IVR and every 401: `{"requestError": {"serviceException": {"messageId", "text"}}}`.
Call Routing (`/callrouting/`) but its 401s: `{"errorCode", "description", "action", "violations",
"resources"}`, all five always present.
Validation errors name the field that is wrong (`body.endpoint.type: ...`). The database failing (disk full,
connection lost) is a 503: nothing was stored, the request may be sent again.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException
from starlette.routing import Match

from switchboard.core.errors import SwitchboardError

log = logging.getLogger(__name__)

MESSAGE_IDS = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "BAD_REQUEST",
    429: "TOO_MANY_REQUESTS",
    500: "GENERAL_ERROR",
    502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE",
}


PROBLEM_PATHS = ("/callrouting/",)
"""Paths whose errors take the newer shape (`problem_body`)."""
ACTIONS = {
    400: "Check the syntax, violations and adjust the request.",
    404: "Check the request URL and the identifiers in it.",
}


class ApiError(Exception):
    """Raise from a route to answer `status` with Infobip's error shape; `violations` are
    `(property, violation)` pairs for the Call Routing shape."""

    def __init__(
        self,
        status: int,
        text: str,
        message_id: str | None = None,
        violations: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.message_id = message_id or MESSAGE_IDS.get(status, "ERROR")
        self.violations = violations


def problem_body(status: int, text: str, violations: tuple[tuple[str, str], ...] = ()) -> dict[str, Any]:
    """The Call Routing API's error (the SDK's `ApiError`)."""
    return {
        "errorCode": f"E{status}",
        "description": text,
        "action": ACTIONS.get(status, "Retry the request later or contact support."),
        "violations": [{"property": name, "violation": text} for name, text in violations],
        "resources": [],
    }


def error_body(message_id: str, text: str) -> dict[str, Any]:
    return {"requestError": {"serviceException": {"messageId": message_id, "text": text}}}


def error_response(
    status: int,
    text: str,
    message_id: str | None = None,
    *,
    request: Request | None = None,
    violations: tuple[tuple[str, str], ...] = (),
) -> JSONResponse:
    """`text` in the shape the request's API uses (`request` None: the Calls API's)."""
    if request is not None and status != 401 and request.url.path.startswith(PROBLEM_PATHS):
        return JSONResponse(problem_body(status, text, violations), status_code=status)
    return JSONResponse(error_body(message_id or MESSAGE_IDS.get(status, "ERROR"), text), status_code=status)


def _location(err: Any) -> str:
    return ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"


def _message(err: Any) -> str:
    return str(err.get("msg", "invalid")).removeprefix("Value error, ")


def describe_validation(exc: RequestValidationError) -> str:
    return "; ".join(f"{_location(err)}: {_message(err)}" for err in exc.errors()) or "invalid request"


def validation_violations(exc: RequestValidationError) -> tuple[tuple[str, str], ...]:
    return tuple((_location(err), _message(err)) for err in exc.errors())


HTTP_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route takes on the request's path (Starlette's own 405 names one route's)."""
    routes = request.app.router.routes
    return [
        method
        for method in HTTP_METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    ]


def describe_http(request: Request, exc: HTTPException) -> str:
    """Routing's own refusals, said with the method and path; others as raised."""
    if exc.status_code == 404 and exc.detail == "Not Found":
        return f"path: there is no route {request.method} {request.url.path}"
    if exc.status_code == 405:
        allowed = ", ".join(allowed_methods(request))
        return f"method: {request.method} is not allowed on {request.url.path}; allowed: {allowed}"
    if exc.status_code == 400 and isinstance(exc.__cause__, RecursionError):
        return "body: the JSON is nested too deeply"
    return str(exc.detail)


UNAVAILABLE_SQLSTATES = ("08", "53", "57P")
"""PostgreSQL's connection exceptions, insufficient resources (disk full, out of memory), shutdown."""


def storage_unavailable(exc: DBAPIError) -> bool:
    """The database could not do the work (full, unreachable), as opposed to refusing it."""
    sqlstate = str(getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None) or "")
    return isinstance(exc, OperationalError | InterfaceError) or sqlstate.startswith(UNAVAILABLE_SQLSTATES)


def install_error_handlers(app: FastAPI) -> None:
    async def on_api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(
            exc.status, exc.text, exc.message_id, request=request, violations=exc.violations
        )

    async def on_core_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, SwitchboardError)
        return error_response(exc.status_hint, str(exc), request=request)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return error_response(
            400, describe_validation(exc), request=request, violations=validation_violations(exc)
        )

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        response = error_response(exc.status_code, describe_http(request, exc), request=request)
        response.headers.update(exc.headers or {})
        if exc.status_code == 405:
            response.headers["Allow"] = ", ".join(allowed_methods(request))
        return response

    async def on_storage(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DBAPIError)
        if not storage_unavailable(exc):
            return await on_unexpected(request, exc)
        reason = str(exc.orig).strip() or type(exc.orig).__name__
        log.error("storage failed on %s %s: %s", request.method, request.url.path, reason)
        text = f"storage unavailable, nothing was stored: {reason}; try again later"
        return error_response(503, text, request=request)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal error; the server logged the details", request=request)

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(SwitchboardError, on_core_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(DBAPIError, on_storage)
    app.add_exception_handler(Exception, on_unexpected)
