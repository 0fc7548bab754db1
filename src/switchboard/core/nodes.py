"""Several servers (nodes) on one database: each says it is alive every few seconds, and the calls of a
node that stopped saying so are ended by a live one.

A call lives on the node that carries its media (`calls.node_id`); the others reach it through that
node (`CallOwners`: the HTTP API forwards a call's requests there, Meta's webhook items about it are
handed to it). A node whose heartbeat is older than `timeout_s` is dead: one live node claims it (the
claim removes it from the directory, so no other live node takes it too), frees what it had leased and
ends its unfinished calls as `CallControl.recover` ends a node's own at its start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from switchboard.core.clock import Clock
from switchboard.core.control import CallControl

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CallOwner:
    """The node that carries a live call, as another node sees it."""

    node_id: str
    url: str | None
    """Where its HTTP API is reached (None once it was declared dead)."""
    alive: bool


class CallOwners(Protocol):
    """Which other node carries a live call; None when this node does, or the call ended or is unknown."""

    node_id: str
    """This node."""

    async def of_call(self, call_id: str) -> CallOwner | None: ...

    async def of_peer_call(self, peer_call_id: str, call_hint: str | None) -> CallOwner | None:
        """By the channel's id of the call, or `call_hint` (our id, when the signal carries it)."""

    async def of_dialog(self, dialog_id: str) -> CallOwner | None:
        """The node that carries the dialog's parent call."""


class NodeDirectory(Protocol):
    node_id: str

    async def heartbeat(self, url: str, now: datetime) -> None:
        """This node is alive and reached at `url`."""

    async def claim_dead(self, before: datetime) -> Sequence[str]:
        """Nodes whose last heartbeat is older than `before`, each claimed by this node alone: removed
        from the directory, with the leases they held and the jobs handed to them set free."""


class NodeWatch:
    """The heartbeat and the dead-node check of one node (`run`, owned by the composition root)."""

    def __init__(
        self,
        directory: NodeDirectory,
        control: CallControl,
        clock: Clock,
        *,
        url: str,
        interval_s: float,
        timeout_s: float,
    ) -> None:
        self._directory = directory
        self._control = control
        self._clock = clock
        self._url = url
        self._interval_s = interval_s
        self._timeout = timedelta(seconds=timeout_s)

    async def beat(self) -> None:
        await self._directory.heartbeat(self._url, self._clock.now())

    async def run(self) -> None:
        while True:
            try:
                await self.beat()
                await self.take_over_dead()
            except Exception:
                log.exception("node heartbeat or dead-node check failed")
            await asyncio.sleep(self._interval_s)

    async def take_over_dead(self) -> list[str]:
        """End the calls of every node found dead; returns the nodes taken over."""
        dead = await self._directory.claim_dead(self._clock.now() - self._timeout)
        for node_id in dead:
            ended = await self._control.adopt(node_id)
            log.log(
                logging.WARNING if ended else logging.INFO,
                "node %s stopped answering (no heartbeat for %.0f s): ended its %d live calls",
                node_id,
                self._timeout.total_seconds(),
                len(ended),
            )
        return list(dead)
