"""User-supplied URLs (notify URLs, audio to play): refuse private addresses unless config allows."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit


class UnsafeUrl(ValueError):
    pass


def _is_private(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return bool(
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def check_url_syntax(url: str, field: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeUrl(f"{field}: {url!r} is not an http(s) URL")


async def check_url_target(url: str, field: str, *, allow_private: bool) -> None:
    """Raise `UnsafeUrl` if `url` is not http(s) or resolves to a private address (unless allowed)."""
    check_url_syntax(url, field)
    if allow_private:
        return
    host = urlsplit(url).hostname or ""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UnsafeUrl(f"{field}: cannot resolve {host!r}: {exc}") from exc
    for info in infos:
        if _is_private(str(info[4][0])):
            raise UnsafeUrl(
                f"{field}: {host!r} resolves to a private address; set "
                "[server] allow_private_urls = true to allow it"
            )
