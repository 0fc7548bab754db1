"""Meta-shaped webhooks: envelope, serialisation, signature and at-least-once delivery.

Reference §1 (envelope, delivery) and §7 (`X-Hub-Signature-256`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from ._state import BusinessNumber

log = logging.getLogger(__name__)


def serialize(document: Any) -> bytes:
    """Serialise like Meta: compact JSON, non-ASCII as `\\uXXXX`, `/` escaped as `\\/`."""
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=True)
    return text.replace("/", "\\/").encode("ascii")


def sign(body: bytes, app_secret: str) -> str:
    """The `X-Hub-Signature-256` header value for `body`."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, signature: str | None, app_secret: str) -> bool:
    return signature is not None and hmac.compare_digest(sign(body, app_secret), signature)


def metadata(number: BusinessNumber) -> dict[str, str]:
    return {
        "display_phone_number": number.display_phone_number,
        "phone_number_id": number.phone_number_id,
    }


def contact(wa_id: str, name: str, *, username: str | None = None) -> dict[str, Any]:
    profile: dict[str, Any] = {"name": name}
    if username is not None:
        profile["username"] = username
    return {"profile": profile, "wa_id": wa_id}


def envelope(number: BusinessNumber, field_name: str, value: dict[str, Any]) -> dict[str, Any]:
    """`object` → `entry[].id` (WABA id) → `changes[].field` → `value`."""
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": number.waba_id, "changes": [{"value": value, "field": field_name}]}],
    }


def calls_value(
    number: BusinessNumber,
    calls: Sequence[dict[str, Any]],
    *,
    contacts: Sequence[dict[str, Any]] = (),
    errors: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    value: dict[str, Any] = {"messaging_product": "whatsapp", "metadata": metadata(number)}
    if contacts:
        value["contacts"] = list(contacts)
    value["calls"] = list(calls)
    if errors:
        value["errors"] = list(errors)
    return value


def statuses_value(number: BusinessNumber, statuses: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "metadata": metadata(number),
        "statuses": list(statuses),
    }


def messages_value(
    number: BusinessNumber, contacts: Sequence[dict[str, Any]], messages: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "metadata": metadata(number),
        "contacts": list(contacts),
        "messages": list(messages),
    }


@dataclass
class Delivery:
    """One webhook and what became of each attempt (HTTP status, or None for a timeout/error)."""

    body: bytes
    signature: str | None
    attempts: list[int | None] = field(default_factory=list)

    @property
    def document(self) -> Any:
        return json.loads(self.body)

    @property
    def delivered(self) -> bool:
        return bool(self.attempts) and self.attempts[-1] is not None and self.attempts[-1] < 300


class WebhookSender:
    """POSTs signed webhooks to one URL; retries non-2xx and timeouts with backoff (at-least-once).

    `post()` schedules a delivery on a task this sender owns; `send()` awaits one.
    """

    def __init__(
        self,
        url: str,
        *,
        client: httpx.AsyncClient | None = None,
        timeout: float = 20.0,
        retry_delays: Sequence[float] = (0.5, 1.0, 2.0, 4.0),
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.retry_delays = tuple(retry_delays)
        self.deliveries: list[Delivery] = []
        self._client = client or httpx.AsyncClient()
        self._owns_client = client is None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def send(self, number: BusinessNumber, field_name: str, value: dict[str, Any]) -> bool:
        body = serialize(envelope(number, field_name, value))
        return await self.deliver(body, sign(body, number.app_secret))

    def post(self, number: BusinessNumber, field_name: str, value: dict[str, Any]) -> None:
        self.spawn(self.send(number, field_name, value))

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def deliver(self, body: bytes, signature: str | None, *, retry: bool = True) -> bool:
        delivery = Delivery(body, signature)
        self.deliveries.append(delivery)
        delays = (0.0, *self.retry_delays) if retry else (0.0,)
        for delay in delays:
            if delay:
                await asyncio.sleep(delay)
            status = await self._attempt(body, signature)
            delivery.attempts.append(status)
            if status is not None and 200 <= status < 300:
                return True
            log.info("webhook delivery to %s failed (%s)", self.url, status)
        return False

    async def send_raw(self, body: bytes, signature: str | None, *, retry: bool = False) -> int | None:
        """Test hook: POST `body` as it is (a duplicate, an out-of-order or a forged event).

        `signature` is the whole header value (`sha256=...`); None sends no header.
        Returns the last HTTP status, or None on timeout/connection error.
        """
        await self.deliver(body, signature, retry=retry)
        return self.deliveries[-1].attempts[-1]

    async def _attempt(self, body: bytes, signature: str | None) -> int | None:
        headers = {"Content-Type": "application/json", "User-Agent": "facebookexternalua"}
        if signature is not None:
            headers["X-Hub-Signature-256"] = signature
        try:
            response = await self._client.post(self.url, content=body, headers=headers, timeout=self.timeout)
        except (httpx.HTTPError, OSError) as exc:
            log.info("webhook POST %s: %r", self.url, exc)
            return None
        return response.status_code

    async def drain(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait for scheduled deliveries to finish."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._owns_client:
            await self._client.aclose()
