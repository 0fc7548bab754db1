"""The process's logging: one format, quiet third-party loggers, and no secrets in any line.

Secrets reach log lines in two ways, and each is closed here. The database driver logs every statement
with its parameters at DEBUG (senders' Meta tokens, subscription secrets, custom header values): it stays
at INFO whatever the level, and SQLAlchemy's engines hide parameters (`store`). Anything else
that prints a known secret field or an `Authorization` credential has the value replaced by `***`.
"""

from __future__ import annotations

import logging
import re

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
QUIET_UNLESS_DEBUG = ("alembic", "httpx", "aioice", "uvicorn.access")
NEVER_DEBUG = ("aiosqlite",)
"""Its DEBUG lines carry every statement's parameters. (SQLAlchemy keeps its own loggers at WARNING, and
its engines hide parameters if someone turns them up.)"""

SECRET_FIELDS = (
    "access_token",
    "accessToken",
    "app_secret",
    "appSecret",
    "verify_token",
    "verifyToken",
    "secret_key",
    "secretKey",
    "password",
)
_NAME = r"\b(?:" + "|".join(SECRET_FIELDS) + r")"
_QUOTED = re.compile(
    r"""(?P<name>\\?["']?""" + _NAME + r"""\\?["']?\s*[:=]\s*)(?P<q>\\?["'])(?P<value>.*?)(?P=q)"""
)
"""`"name": "value"`, `'name': 'value'`, and both escaped inside a JSON string."""
_BARE = re.compile(r"(?P<name>" + _NAME + r"""\s*[:=]\s*)(?P<value>[^\s"',&;)}\]]+)""")
"""`name=value` (query strings, reprs)."""
_CREDENTIAL = re.compile(r"\b(?P<scheme>Bearer|Basic|App)\s+(?P<value>[A-Za-z0-9._~+/=-]{8,})")
REDACTED = "***"


def redact(text: str) -> str:
    """`text` with the values of known secret fields and `Authorization` credentials replaced."""
    text = _QUOTED.sub(lambda m: f"{m['name']}{m['q']}{REDACTED}{m['q']}", text)
    text = _BARE.sub(lambda m: f"{m['name']}{REDACTED}", text)
    return _CREDENTIAL.sub(lambda m: f"{m['scheme']} {REDACTED}", text)


class RedactSecrets(logging.Filter):
    """A handler filter that rewrites a record's message through `redact`."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def configure_logging(level: str) -> None:
    """Log to stderr at `level` (DEBUG, INFO, WARNING, ERROR), without secrets."""
    level = level.upper()
    logging.basicConfig(level=level, format=FORMAT)
    if level != "DEBUG":
        for name in QUIET_UNLESS_DEBUG:
            logging.getLogger(name).setLevel(logging.WARNING)
    else:
        for name in NEVER_DEBUG:
            logging.getLogger(name).setLevel(logging.INFO)
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactSecrets())
