"""No secret reaches a log line: known secret fields and credentials are redacted, database drivers
never log at DEBUG."""

from __future__ import annotations

import json
import logging

import pytest

from switchboard.logs import REDACTED, RedactSecrets, configure_logging, redact


@pytest.mark.parametrize(
    "line",
    [
        '{"access_token": "EAAG-s3cret", "phone_number_id": "1"}',
        "{'app_secret': 'EAAG-s3cret', 'waba_id': '2'}",
        json.dumps(json.dumps({"accessToken": "EAAG-s3cret"})),
        '{"secretKey": "EAAG s3cret with spaces"}',
        "GET /x?verify_token=EAAG-s3cret&hub.mode=subscribe",
        "password=EAAG-s3cret, user=u",
        "Authorization: Bearer EAAG-s3cret-0123",
        "sent 'Authorization: App EAAG-s3cret-0123'",
    ],
)
def test_secrets_are_redacted(line: str) -> None:
    cleaned = redact(line)
    assert "s3cret" not in cleaned and REDACTED in cleaned, cleaned


def test_other_text_is_left_alone() -> None:
    for line in ("call 42 answered", '{"username": "u", "phoneNumber": "15550001111"}', "App started"):
        assert redact(line) == line


def test_the_filter_rewrites_formatted_records() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "sender %s", ({"app_secret": "s3cret"},), None)
    assert RedactSecrets().filter(record)
    assert "s3cret" not in record.getMessage()


def test_database_drivers_never_log_at_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", root.level)
    for name in ("aiosqlite", "sqlalchemy.engine"):
        monkeypatch.setattr(logging.getLogger(name), "level", logging.NOTSET)
    configure_logging("debug")
    assert not logging.getLogger("aiosqlite").isEnabledFor(logging.DEBUG)
    assert not logging.getLogger("sqlalchemy.engine.Engine").isEnabledFor(logging.DEBUG)
    assert logging.getLogger("switchboard").isEnabledFor(logging.DEBUG)
    assert any(isinstance(f, RedactSecrets) for f in root.handlers[0].filters)
