"""Durable webhook delivery: events are rows in `webhook_outbox` before anyone is told; one loop sends them.

Order and isolation. Rows are delivered oldest first per *stream*, a stream being one subscription's view of
one call (`(subscription_id, call_id)`): a call's later event is never sent to a subscription before its
earlier one was delivered (or given up). Streams are independent, so an unreachable application delays only
its own events, never another subscription's or another call's.

Retries. A non-2xx answer, a timeout or a refused connection schedules the next attempt after
`base_delay * 2**(attempts-1)` seconds (1 s, 2 s, 4 s, ... by default), capped at `max_delay` (5 min), with
±20 % jitter; after `give_up_after` (24 h) from the event the row is marked failed and logged, and the
stream moves on. Rows survive a restart: the loop resumes whatever is pending in the table.

Signing (subscription security).
- BASIC: `Authorization: Basic base64(username:password)`.
- HMAC: `X-Timestamp: <unix seconds>` and `X-HMAC-Signature` = `X-Signature` =
  `<alg>=<hex HMAC(secretKey, body)>`, where `body` is the exact bytes of the request body and `<alg>` is
  the digest of the subscription's `algorithm` (the SDK's `HmacAlgorithm`: `HMAC_SHA_256` → `sha256`, the
  default; `HMAC_SHA_1` → `sha1`, `HMAC_SHA_512` → `sha512`, ...). A receiver recomputes the HMAC over the
  raw body and compares in constant time; it may reject timestamps far from its clock to limit replays.
Every request carries `Content-Type: application/json`, the subscription's custom headers and
`X-Event-Id: <outbox row id>` (the same on retries, so a receiver can drop duplicates).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import bindparam, select, update

from switchboard.httpapi.urls import UnsafeUrl, UrlPolicy
from switchboard.store.base import Database
from switchboard.store.calls_api import WebhookOutboxRow, utc
from switchboard.store.writes import Step

log = logging.getLogger(__name__)

DIGESTS: dict[str, str] = {
    "HMAC_MD5": "md5",
    "HMAC_SHA_1": "sha1",
    "HMAC_SHA_224": "sha224",
    "HMAC_SHA_256": "sha256",
    "HMAC_SHA_384": "sha384",
    "HMAC_SHA_512": "sha512",
}


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_delay: float = 1.0
    max_delay: float = 300.0
    give_up_after: float = 24 * 3600.0
    timeout: float = 5.0
    jitter: float = 0.2

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the `attempts`-th failed attempt."""
        raw = min(self.max_delay, self.base_delay * 2.0 ** max(0, attempts - 1))
        return raw * (1 + random.uniform(-self.jitter, self.jitter))


def sign(body: bytes, secret: str, algorithm: str | None) -> str:
    """`<alg>=<hex HMAC(secret, body)>` as sent in `X-HMAC-Signature` / `X-Signature`."""
    digest = DIGESTS.get(algorithm or "HMAC_SHA_256", "sha256")
    mac = hmac.new(secret.encode(), body, digest).hexdigest()
    return f"{digest}={mac}"


def auth_headers(security: Mapping[str, Any] | None, body: bytes, now: datetime) -> dict[str, str]:
    """Headers for a subscription profile's `security` (stored as the normalised wire JSON)."""
    if not security:
        return {}
    creds = security.get("credentials") or {}
    kind = security.get("type")
    if kind == "BASIC":
        token = base64.b64encode(f"{creds.get('username')}:{creds.get('password')}".encode()).decode()
        return {"Authorization": f"Basic {token}"}
    if kind == "HMAC":
        signature = sign(body, str(creds.get("secretKey", "")), creds.get("algorithm"))
        return {
            "X-HMAC-Signature": signature,
            "X-Signature": signature,
            "X-Timestamp": str(int(now.timestamp())),
        }
    return {}


@dataclass(slots=True)
class Pending:
    """An undelivered outbox row, as the delivery loop keeps it in memory."""

    id: int
    subscription_id: str
    call_id: str | None
    url: str
    event_type: str
    body: str
    attempts: int
    next_attempt_at: datetime
    created_at: datetime

    @classmethod
    def of(cls, row: WebhookOutboxRow) -> Pending:
        return cls(
            id=row.id,
            subscription_id=row.subscription_id,
            call_id=row.call_id,
            url=row.url,
            event_type=row.event_type,
            body=row.body,
            attempts=row.attempts,
            next_attempt_at=utc(row.next_attempt_at),
            created_at=utc(row.created_at),
        )

    @property
    def stream(self) -> tuple[str, str | None]:
        return (self.subscription_id, self.call_id)


class Outbox:
    """Delivers stored events (`run`, the one background task).

    The table is the record; the loop works from memory: rows are handed over with `add` once they are
    committed, and whatever was pending when the loop starts is read back from the table. Each attempt's
    outcome is written to the row before the stream moves on.
    """

    def __init__(
        self,
        db: Database,
        http: httpx.AsyncClient,
        *,
        profiles: Callable[[str], Awaitable[dict[str, Any] | None]],
        urls: UrlPolicy,
        clock: Callable[[], datetime],
        retry: RetryPolicy,
        concurrency: int = 16,
    ) -> None:
        self._db = db
        self._update = update(WebhookOutboxRow).where(WebhookOutboxRow.id == bindparam("row_id"))
        self._http = http
        self._profiles = profiles
        self._urls = urls
        self._now = clock
        self._retry = retry
        self._wake = asyncio.Event()
        self._limit = asyncio.Semaphore(concurrency)
        self._streams: dict[tuple[str, str | None], deque[Pending]] = {}
        self._known: set[int] = set()
        self._inflight: set[tuple[str, str | None]] = set()

    def add(self, items: list[Pending]) -> None:
        """Committed rows to deliver; delivery starts at once."""
        for item in items:
            self._enqueue(item)
        if items:
            self._wake.set()

    def drop_subscription(self, subscription_id: str) -> None:
        """The subscription was deleted (its rows were marked failed): stop delivering them."""
        for key in [k for k in self._streams if k[0] == subscription_id and k not in self._inflight]:
            for item in self._streams.pop(key):
                self._known.discard(item.id)

    def _enqueue(self, item: Pending) -> None:
        if item.id in self._known:
            return
        self._known.add(item.id)
        self._streams.setdefault(item.stream, deque()).append(item)

    async def run(self) -> None:
        """Deliver pending rows until cancelled; sleep until the next due row or an `add`.

        Each stream has at most one attempt in flight; attempts run as tasks of this loop's TaskGroup,
        so a slow receiver delays nothing but its own stream.
        """
        await self._load()
        async with asyncio.TaskGroup() as tg:
            while True:
                self._wake.clear()
                next_due = self._dispatch(tg)
                # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation that
                # arrives as the wait completes, and this loop would never stop.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(next_due):
                        await self._wake.wait()

    async def _load(self) -> None:
        async with self._db.session() as s:
            rows = await s.scalars(
                select(WebhookOutboxRow)
                .where(WebhookOutboxRow.delivered_at.is_(None), WebhookOutboxRow.failed_at.is_(None))
                .order_by(WebhookOutboxRow.id)
            )
            pending = [Pending.of(row) for row in rows]
        for item in pending:
            self._enqueue(item)
        for queue in self._streams.values():
            ordered = sorted(queue, key=lambda item: item.id)
            queue.clear()
            queue.extend(ordered)
        if pending:
            log.info("resuming delivery of %d stored events", len(pending))

    def _dispatch(self, tg: asyncio.TaskGroup) -> float | None:
        """Start an attempt for every due stream head not in flight; return seconds until the next."""
        now = self._now()
        waits: list[float] = []
        for key, queue in self._streams.items():
            if key in self._inflight:
                continue
            head = queue[0]
            due_in = (head.next_attempt_at - now).total_seconds()
            if due_in > 0:
                waits.append(due_in)
                continue
            self._inflight.add(key)
            tg.create_task(self._attempt(head))
        return min(waits) if waits else None

    async def _attempt(self, item: Pending) -> None:
        finished = False
        try:
            async with self._limit:
                error = await self._post(item)
            finished = await self._record(item, error)
        except Exception:
            log.exception("webhook %s: delivery attempt failed unexpectedly", item.id)
            item.next_attempt_at = self._now() + timedelta(seconds=self._retry.delay(item.attempts + 1))
        finally:
            if finished:
                queue = self._streams.get(item.stream)
                if queue and queue[0] is item:
                    queue.popleft()
                    if not queue:
                        del self._streams[item.stream]
                self._known.discard(item.id)
            self._inflight.discard(item.stream)
            self._wake.set()

    async def _record(self, item: Pending, error: str | None) -> bool:
        """Write the attempt's outcome to the row; True when the row is done (delivered or given up)."""
        now = self._now()
        item.attempts += 1
        values: dict[str, Any] = {
            "row_id": item.id,
            "attempts": item.attempts,
            "next_attempt_at": item.next_attempt_at,
            "delivered_at": None,
            "failed_at": None,
            "last_error": None,
        }
        done = True
        if error is None:
            values["delivered_at"] = now
        elif (now - item.created_at).total_seconds() >= self._retry.give_up_after:
            values.update(failed_at=now, last_error=error[:2000])
            log.error(
                "giving up webhook %s (%s of call %s) to %s after %d attempts: %s",
                item.id,
                item.event_type,
                item.call_id,
                item.url,
                item.attempts,
                error,
            )
        else:
            item.next_attempt_at = now + timedelta(seconds=self._retry.delay(item.attempts))
            values.update(next_attempt_at=item.next_attempt_at, last_error=error[:2000])
            log.info("webhook %s to %s failed (attempt %d): %s", item.id, item.url, item.attempts, error)
            done = False
        await self._db.write(Step(self._update, values))
        return done

    async def _post(self, row: Pending) -> str | None:
        """POST the row; None on a 2xx, otherwise what went wrong."""
        try:
            await self._urls.check_url(row.url, "notifyUrl")
        except UnsafeUrl as exc:
            return str(exc)
        profile = await self._profiles(row.subscription_id)
        if profile is None:
            return "the subscription was deleted"
        body = row.body.encode()
        headers = {"Content-Type": "application/json", "X-Event-Id": str(row.id)}
        webhook = profile.get("webhook") or {}
        raw_headers = webhook.get("headers") or {}
        if isinstance(raw_headers, list):
            raw_headers = {h["key"]: h["value"] for h in raw_headers}
        headers.update({str(k): str(v) for k, v in raw_headers.items()})
        headers.update(auth_headers(profile.get("security"), body, self._now()))
        try:
            response = await self._http.post(
                row.url, content=body, headers=headers, timeout=self._retry.timeout
            )
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}: {response.text[:200]}"
