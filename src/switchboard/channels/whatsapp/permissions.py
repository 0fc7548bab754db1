"""WhatsApp call permissions: requests sent through Meta, replies consumed from webhooks, state kept.

The rules (validity, request and call limits) are the core's (`core.policy`); this module applies them
to what Meta reports and keeps the record in the permission repository.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from switchboard.channels.whatsapp.graph import GraphClient
from switchboard.channels.whatsapp.numbers import wa_number
from switchboard.channels.whatsapp.senders import Sender, SenderDirectory
from switchboard.core import policy
from switchboard.core.errors import ChannelError, NotFound
from switchboard.core.models import PermissionStatus
from switchboard.core.ports import PermissionRecord, PermissionRepository

log = logging.getLogger(__name__)


class WhatsAppPermissions:
    def __init__(
        self,
        graph: GraphClient,
        senders: SenderDirectory,
        permissions: PermissionRepository,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._graph = graph
        self._senders = senders
        self._permissions = permissions
        self._now = clock

    async def sender(self, sender: str) -> Sender:
        found = await self._senders.find(sender)
        if found is None:
            raise NotFound(f"WhatsApp sender {sender!r} is not configured on this server")
        return found

    async def record(self, sender_id: str, user: str) -> PermissionRecord:
        user = wa_number(user)
        return await self._permissions.get(sender_id, user) or PermissionRecord(sender_id, user)

    async def request(self, sender: Sender, user: str, text: str) -> str:
        """Send a call permission request, within Meta's limits; returns Meta's message id."""
        record = await self.record(sender.phone_number_id, user)
        now = self._now()
        policy.check_request_allowed(record, sender.phone_number_id, record.user, now)
        message_id = await self._graph.send_permission_request(sender, record.user, text)
        policy.record_request(record, now)
        await self._permissions.save(record)
        return message_id

    async def on_reply(
        self,
        sender_id: str,
        user: str,
        *,
        accepted: bool,
        permanent: bool,
        expires_at: datetime | None,
    ) -> PermissionRecord:
        record = await self.record(sender_id, user)
        now = self._now()
        if accepted:
            policy.grant(record, permanent=permanent, expires_at=expires_at, now=now)
        else:
            policy.revoke(record, now)
        await self._permissions.save(record)
        log.info("call permission of %s for %s: %s", record.user, sender_id, record.status)
        return record

    async def current(self, sender: Sender, user: str) -> PermissionRecord:
        """Meta's current view when it answers (permissions change outside this server), else ours."""
        try:
            return await self.refresh(sender, user)
        except ChannelError as exc:
            log.warning("using the stored call permission of %s: %s", user, exc)
            return await self.record(sender.phone_number_id, user)

    async def forget(self, sender_id: str, user: str) -> None:
        """Meta refused a call for lack of permission: the stored permission is stale."""
        record = await self.record(sender_id, user)
        if record.status is not PermissionStatus.NO_PERMISSION:
            policy.revoke(record, self._now())
            await self._permissions.save(record)

    async def refresh(self, sender: Sender, user: str) -> PermissionRecord:
        """Take Meta's view of the permission (`GET /{phone-number-id}/call_permissions`)."""
        record = await self.record(sender.phone_number_id, user)
        data = await self._graph.call_permissions(sender, record.user)
        permission = data.get("permission") or {}
        status = str(permission.get("status", "no_permission")).upper()
        if status in PermissionStatus.__members__:
            record.status = PermissionStatus(status)
            expiration = permission.get("expiration_time")
            record.expires_at = datetime.fromtimestamp(int(expiration), UTC) if expiration else None
            record.updated_at = self._now()
            await self._permissions.save(record)
        return record
