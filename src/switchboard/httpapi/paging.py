"""Infobip's paging: `?page=&size=` in, `{"page", "size", "totalPages", "totalResults"}` out (all four
present, `size` at least 1 even on an empty page, as the official SDK requires)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, TypeVar

from fastapi import Query

MAX_PAGE = 2**31 - 1
PageParam = Annotated[int, Query(ge=0, le=MAX_PAGE, description="Page number, from 0.")]
SizeParam = Annotated[int, Query(ge=1, le=1000, description="Results per page.")]

T = TypeVar("T")


def paging(page: int, size: int, total: int) -> dict[str, int]:
    size = max(1, size)
    return {"page": page, "size": size, "totalPages": (total + size - 1) // size, "totalResults": total}


def page_of(items: Sequence[T], page: int, size: int) -> list[T]:
    return list(items[page * size : (page + 1) * size])


def paged(items: Sequence[Any], page: int, size: int) -> dict[str, Any]:
    """`{"results": [...this page...], "paging": {...}}` for items already rendered as JSON."""
    return {"results": page_of(items, page, size), "paging": paging(page, size, len(items))}
