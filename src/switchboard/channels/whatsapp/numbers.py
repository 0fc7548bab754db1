"""Phone numbers as Meta writes them."""

from __future__ import annotations


def wa_number(number: str) -> str:
    """Meta's form of a phone number: digits only (no '+', spaces or dashes)."""
    return "".join(ch for ch in number if ch.isdigit())
