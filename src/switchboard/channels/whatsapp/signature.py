"""`X-Hub-Signature-256`: HMAC-SHA256 of the raw body with the app secret, as Meta signs webhooks."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable


def sign(body: bytes, app_secret: str) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def matching_secret(body: bytes, header: str, secrets: Iterable[str]) -> str | None:
    """The secret among `secrets` whose signature of `body` equals `header`, or None."""
    if not header.startswith("sha256="):
        return None
    for secret in secrets:
        if hmac.compare_digest(sign(body, secret), header.strip()):
            return secret
    return None
