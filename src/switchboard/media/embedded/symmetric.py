"""Symmetric RTP with latching (RFC 4961; the "comedia" behaviour SBCs call latching), sans-I/O.

We send to the address in the peer's SDP until a packet we accept (valid RTP, or one that authenticates
under SRTP) arrives; from then on we send to where it came from, which is what gets through a NAT in
front of the peer. Packets from any other address are dropped while the latched one is alive; after
`relatch_after` seconds of silence from it, the next accepted source is latched instead (the NAT
rebinding). A new SDP from the peer (a re-INVITE) starts over.
"""

from __future__ import annotations

Address = tuple[str, int]


class Latch:
    def __init__(self, relatch_after: float) -> None:
        self.relatch_after = relatch_after
        self.signalled: Address | None = None
        """From the peer's SDP."""
        self.latched: Address | None = None
        self._last_heard = 0.0

    def reset(self, signalled: Address | None) -> None:
        self.signalled = signalled
        self.latched = None
        self._last_heard = 0.0

    def admits(self, source: Address, now: float) -> bool:
        """Whether a packet from `source` may be processed (before checking its contents)."""
        latched = self.latched
        return latched is None or source == latched or now - self._last_heard > self.relatch_after

    def heard(self, source: Address, now: float) -> bool:
        """Record an accepted packet from `source`; True when this latched (or re-latched) it."""
        self._last_heard = now
        if source == self.latched:
            return False
        self.latched = source
        return True

    @property
    def destination(self) -> Address | None:
        return self.latched or self.signalled
