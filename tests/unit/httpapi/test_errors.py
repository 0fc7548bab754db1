"""The database failing is a 503 in Infobip's error shape (nothing was stored: send it again); the
database refusing the work is not."""

from __future__ import annotations

import sqlite3

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError

from switchboard.httpapi.errors import install_error_handlers


class PgDiskFull(Exception):
    sqlstate = "53100"


def app_raising(error: Exception) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/write")
    async def write() -> None:
        raise error

    return app


def dbapi(orig: Exception) -> DBAPIError:
    return DBAPIError.instance(
        "INSERT ...", None, orig, sqlite3.Error if isinstance(orig, sqlite3.Error) else Exception
    )


@pytest.mark.parametrize(
    ("orig", "status"),
    [
        (sqlite3.OperationalError("database or disk is full"), 503),
        (PgDiskFull("could not extend file: No space left on device"), 503),
        (sqlite3.IntegrityError("UNIQUE constraint failed: calls.id"), 500),
    ],
)
async def test_storage_failures_are_503(orig: Exception, status: int) -> None:
    transport = httpx.ASGITransport(app=app_raising(dbapi(orig)), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post("/write")
    assert response.status_code == status
    error = response.json()["requestError"]["serviceException"]
    if status == 503:
        assert error["messageId"] == "SERVICE_UNAVAILABLE"
        assert str(orig) in error["text"]
    else:
        assert str(orig) not in error["text"]
