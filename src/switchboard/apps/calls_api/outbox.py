"""Durable webhook delivery: events are rows in `webhook_outbox` before anyone is told; one loop sends them.

Order and isolation. Rows are delivered oldest first per *stream*, a stream being one subscription's view of
one call (`(subscription_id, call_id)`): a call's later event is never sent to a subscription before its
earlier one was delivered (or given up). Streams are independent, so an unreachable application delays only
its own events, never another subscription's or another call's.

Retries. A non-2xx answer, a timeout or a refused connection schedules the next attempt after
`base_delay * 2**(attempts-1)` seconds (1 s, 2 s, 4 s, ... by default), capped at `max_delay` (5 min), with
±20 % jitter; after `give_up_after` (24 h) from the event the row is marked failed and logged, and the
stream moves on. Rows survive a restart: the loop resumes whatever is pending in the table.

Several nodes. Nodes on one database share the table: a node delivers only the rows it holds a lease on
(`store.outbox`), a stream is delivered by one node at a time, and the rows of a node that dies are
taken over by another once its leases run out. A receiver may see an event twice only when a node died
during the request; `X-Event-Id` lets it drop the repeat.

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
import heapq
import hmac
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from switchboard.httpapi.urls import UnsafeUrl, UrlPolicy
from switchboard.store.base import Database
from switchboard.store.calls_api import utc
from switchboard.store.outbox import OutboxLeases
from switchboard.store.writes import Outcome, Step

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
    lease: float = 30.0
    """How long a node holds a row it is delivering; longer than `timeout`, so a row is taken over
    only from a node that died."""

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
    """An undelivered outbox row this node holds the lease on."""

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
    def of(cls, row: Any) -> Pending:
        """From a `WebhookOutboxRow` or a row with its columns as attributes."""
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


class Outbox:
    """Delivers stored events (`run`, the one background task).

    The table is the record and the queue: due stream heads are claimed with a lease
    (`store.outbox.OutboxLeases`), delivered, and each attempt's outcome is written to its row, which
    frees the lease and makes the stream's next row claimable. Claims ride on the writes that make rows
    claimable: `write` stores new rows and claims in the same transaction, and so does each attempt's
    outcome; rows stored by other nodes, retries that come due and leases that ran out are found by
    looking every `poll_s`.
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
        owner: str = "node",
        concurrency: int = 16,
        poll_s: float = 1.0,
    ) -> None:
        self._db = db
        self._leases = OutboxLeases(db, owner)
        self._http = http
        self._profiles = profiles
        self._urls = urls
        self._now = clock
        self._retry = retry
        self._concurrency = concurrency
        self._poll_s = poll_s
        self._wake = asyncio.Event()
        self._inflight: set[int] = set()
        self._reserved = 0
        self._retries: list[datetime] = []
        """When this node's failed attempts come due (a heap): the loop looks then."""
        self._tasks: asyncio.TaskGroup | None = None

    def wake(self) -> None:
        """Rows were committed elsewhere: claim and deliver now."""
        self._wake.set()

    async def write(self, *steps: Step) -> list[Outcome]:
        """Run `steps` (which store rows) and claim what is due in the same transaction; claimed rows
        are delivered at once. Returns the outcomes of `steps`."""
        free = self._concurrency - len(self._inflight) - self._reserved
        if self._tasks is None or free <= 0:
            outcomes = await self._db.write(*steps)
            self._wake.set()
            return outcomes
        claim = self._leases.claim_step(self._now(), limit=free, lease=timedelta(seconds=self._retry.lease))
        self._reserved += free
        try:
            outcomes = await self._db.write(*steps, claim)
        finally:
            self._reserved -= free
        for row in self._leases.claimed(outcomes[-1]):
            item = Pending.of(row)
            self._inflight.add(item.id)
            self._tasks.create_task(self._attempt(item))
        return outcomes[:-1]

    async def run(self) -> None:
        """Deliver pending rows until cancelled. Each stream has at most one attempt in flight (only
        its head can be claimed); attempts run as tasks of this loop's TaskGroup, so a slow receiver
        delays nothing but its own stream."""
        await self._leases.release()
        async with asyncio.TaskGroup() as tasks:
            self._tasks = tasks
            try:
                await self._look_forever()
            finally:
                self._tasks = None

    async def _look_forever(self) -> None:
        while True:
            self._wake.clear()
            looked_at = self._now()
            try:
                await self.write()
            except Exception:
                log.exception("claiming webhook events to deliver failed")
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation that
            # arrives as the wait completes, and this loop would never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._next_look(looked_at)):
                    await self._wake.wait()

    def _next_look(self, looked_at: datetime) -> float:
        """Seconds until the next retry falls due (one due since `looked_at`: now), at most `poll_s`."""
        while self._retries and self._retries[0] <= looked_at:
            heapq.heappop(self._retries)
        if not self._retries:
            return self._poll_s
        return max(0.0, min(self._poll_s, (self._retries[0] - self._now()).total_seconds()))

    async def _attempt(self, item: Pending) -> None:
        try:
            error = await self._post(item)
            await self._record(item, error)
        except Exception:
            log.exception("webhook %s: delivery attempt failed unexpectedly", item.id)
            self._wake.set()
        finally:
            self._inflight.discard(item.id)

    async def _record(self, item: Pending, error: str | None) -> None:
        """Write the attempt's outcome to the row (delivered, given up, or when to try again), and
        claim what that made due (the stream's next row) in the same transaction."""
        now = self._now()
        attempts = item.attempts + 1
        outcome: dict[str, Any] = {"attempts": attempts, "next_attempt_at": item.next_attempt_at}
        if error is None:
            outcome["delivered_at"] = now
        elif (now - item.created_at).total_seconds() >= self._retry.give_up_after:
            outcome.update(failed_at=now, last_error=error[:2000])
            log.error(
                "giving up webhook %s (%s of call %s) to %s after %d attempts: %s",
                item.id,
                item.event_type,
                item.call_id,
                item.url,
                attempts,
                error,
            )
        else:
            retry_at = now + timedelta(seconds=self._retry.delay(attempts))
            outcome.update(next_attempt_at=retry_at, last_error=error[:2000])
            heapq.heappush(self._retries, retry_at)
            self._wake.set()  # the loop sets its timer for it
            log.info("webhook %s to %s failed (attempt %d): %s", item.id, item.url, attempts, error)
        self._inflight.discard(item.id)
        (written,) = await self.write(self._leases.record_step(item.id, **outcome))
        if written.rowcount != 1:
            log.warning("webhook %s: the lease ran out during the attempt; another node has the row", item.id)

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
