"""The Infobip-compatible Calls API: REST routes over `CallControl` and webhooks from a durable outbox."""

from switchboard.apps.calls_api.api import CallsApi
from switchboard.apps.calls_api.outbox import RetryPolicy

__all__ = ["CallsApi", "RetryPolicy"]
