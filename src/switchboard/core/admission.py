"""Who may call whom: inbound targets that an application takes, and per-endpoint outbound policies.

Rules hold here, not in applications or channels: the PSTN ban for every call and every bridge, and
policies an endpoint type registers (WhatsApp: the user's call permission), checked before anything is
dialled and told how each call ended.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from switchboard.core import policy
from switchboard.core.clock import Clock
from switchboard.core.models import Call, Endpoint, EndpointType, InboundAction, InboundTarget
from switchboard.core.ports import Application, PermissionRecord, PermissionRepository


class OutboundPolicy(Protocol):
    async def check(self, call: Call) -> None:
        """Raise a `PolicyViolation` if `call` may not be placed now."""

    async def outcome(self, call: Call, *, connected: bool) -> None:
        """A placed call was answered (`connected`) or ended unanswered."""


class CallPermissionPolicy:
    """A business-initiated WhatsApp call needs the user's call permission (`policy` has Meta's rules)."""

    def __init__(self, permissions: PermissionRepository, clock: Clock) -> None:
        self._permissions = permissions
        self._clock = clock

    def _now(self) -> datetime:
        return self._clock.now()

    async def check(self, call: Call) -> None:
        sender = call.sender_id or ""
        record = await self._permissions.get(sender, call.to)
        policy.check_call_permission(record, sender, call.to, self._now())

    async def outcome(self, call: Call, *, connected: bool) -> None:
        if call.sender_id is None:
            return
        record = await self._permissions.get(call.sender_id, call.to)
        record = record or PermissionRecord(call.sender_id, call.to)
        policy.record_call_outcome(record, connected=connected, now=self._now())
        await self._permissions.save(record)


class Admission:
    def __init__(self) -> None:
        self._applications: dict[InboundAction, Application] = {}
        self._outbound: dict[EndpointType, list[OutboundPolicy]] = {}

    def register_application(self, application: Application) -> None:
        self._applications[application.action] = application

    def add_outbound_policy(self, endpoint_type: EndpointType, rule: OutboundPolicy) -> None:
        self._outbound.setdefault(endpoint_type, []).append(rule)

    async def refusal(self, target: InboundTarget | None) -> str | None:
        """Why a call cannot be handed to `target`, or None when an application takes it."""
        if target is None:
            return "the number has no inbound configuration"
        application = self._applications.get(target.action)
        if application is None:
            return f"inbound action {target.action} is not available on this server"
        return await application.refusal(target)

    @staticmethod
    def check_bridge(*endpoints: Endpoint) -> None:
        policy.check_not_pstn(*endpoints)

    async def check_outbound(self, call: Call) -> None:
        policy.check_not_pstn(call.endpoint)
        for rule in self._outbound.get(call.endpoint.type, ()):
            await rule.check(call)

    async def outcome(self, call: Call, *, connected: bool) -> None:
        for rule in self._outbound.get(call.endpoint.type, ()):
            await rule.outcome(call, connected=connected)
