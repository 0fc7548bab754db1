"""The event loop and HTTP parser the entry points run on: uvloop and httptools where installed.

Both are package dependencies; the fallbacks (asyncio's own loop, h11) keep a platform without their wheels
working. `[server] event_loop = "asyncio"` (or `SWITCHBOARD_EVENT_LOOP=asyncio`) forces asyncio's loop, and
`[server] http_parser = "h11"` the pure-Python parser. Only the entry points choose a loop; `Server` runs
on whatever loop it is started in (tests use pytest-asyncio's).
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

T = TypeVar("T")

EventLoopName = Literal["auto", "uvloop", "asyncio"]
HttpParserName = Literal["auto", "httptools", "h11"]


class RuntimeUnavailable(RuntimeError):
    """A loop or parser was asked for by name but is not installed."""


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def event_loop_name(wanted: EventLoopName = "auto") -> Literal["uvloop", "asyncio"]:
    """The loop `wanted` resolves to: `auto` is uvloop when it is installed, else asyncio."""
    if wanted == "asyncio":
        return "asyncio"
    if _installed("uvloop"):
        return "uvloop"
    if wanted == "uvloop":
        raise RuntimeUnavailable("event_loop 'uvloop' was asked for but uvloop is not installed")
    return "asyncio"


def http_parser_name(wanted: HttpParserName = "auto") -> Literal["httptools", "h11"]:
    """The HTTP/1.1 parser uvicorn uses: `auto` is httptools when it is installed, else h11."""
    if wanted == "h11":
        return "h11"
    if _installed("httptools"):
        return "httptools"
    if wanted == "httptools":
        raise RuntimeUnavailable("http_parser 'httptools' was asked for but httptools is not installed")
    return "h11"


def loop_factory(wanted: EventLoopName = "auto") -> Callable[[], asyncio.AbstractEventLoop]:
    if event_loop_name(wanted) == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop


def run(main: Coroutine[Any, Any, T], *, event_loop: EventLoopName = "auto") -> T:
    """`asyncio.run(main)` on the chosen loop."""
    with asyncio.Runner(loop_factory=loop_factory(event_loop)) as runner:
        return runner.run(main)
