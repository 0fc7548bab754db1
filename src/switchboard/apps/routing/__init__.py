"""Call routing, Infobip-compatible (`/callrouting/1`): routes with criteria and destinations, and the
application that routes calls handed to CALL_ROUTING."""

from switchboard.apps.routing.application import CallRouting

__all__ = ["CallRouting"]
