"""Phone numbers at the edge: written with `+`, spaces, dashes, dots or parentheses, kept as Meta writes
them (digits only), so every lookup and every stored record uses one form."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

MAX_DIGITS = 15
"""E.164's longest number."""
_WRITTEN = re.compile(r"\+?[0-9 ().\-]+")


def digits(number: str) -> str:
    """`number` reduced to its digits: `+1 (555) 010-0000` -> `15550100000`."""
    return "".join(ch for ch in number if "0" <= ch <= "9")


def phone_number(value: str) -> str:
    """The digits of a phone number as people write it; `ValueError` if it is not one."""
    found = digits(value)
    if not _WRITTEN.fullmatch(value.strip()) or not 1 <= len(found) <= MAX_DIGITS:
        raise ValueError(
            f"{value!r} is not a phone number (up to {MAX_DIGITS} digits, optionally written with +, "
            "spaces, dashes or parentheses)"
        )
    return found


PhoneNumber = Annotated[str, AfterValidator(phone_number)]
"""A phone number in the API, normalised to its digits when the request is read."""
