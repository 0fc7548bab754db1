"""Phone numbers as Meta writes them: digits only (no '+', spaces or dashes)."""

from __future__ import annotations

from switchboard.httpapi.numbers import digits

wa_number = digits
"""Meta's form of a phone number; Meta's own payloads are taken as they come (see `httpapi.numbers` for
the API's stricter reading)."""

__all__ = ["wa_number"]
