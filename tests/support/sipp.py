"""Running sipp (Debian `sip-tester`) against a SIP endpoint on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SIPP = shutil.which("sipp")
needs_sipp = pytest.mark.skipif(
    SIPP is None, reason="needs sipp (Debian sip-tester, installed by scripts/setup)"
)


def free_port(transport: str) -> int:
    kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class SippRun:
    returncode: int
    output: str


def sipp_args(transport: str, local_port: int, *, calls: int = 1, seconds: int = 30) -> list[str]:
    return [
        "-i", "127.0.0.1",
        "-p", str(local_port),
        "-t", "u1" if transport == "udp" else "t1",
        "-m", str(calls),
        "-nostdin",
        "-timeout", f"{seconds}s",
        "-timeout_error",
        "-trace_err",
    ]  # fmt: skip


async def run_sipp(args: list[str], cwd: Path, *, timeout: float = 60) -> SippRun:
    """Run sipp to completion; its exit code is 0 only when every call followed the scenario."""
    assert SIPP is not None
    process = await asyncio.create_subprocess_exec(
        SIPP, *args, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    errors = "\n".join(p.read_text(errors="replace") for p in cwd.glob("*_errors.log"))
    return SippRun(process.returncode or 0, output.decode(errors="replace")[-3000:] + errors[-3000:])


@contextlib.asynccontextmanager
async def sipp_server(args: list[str], cwd: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """sipp running in the background (a UAS); terminated on exit."""
    assert SIPP is not None
    process = await asyncio.create_subprocess_exec(
        SIPP, *args, cwd=cwd, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()


async def wait_listening(transport: str, port: int, attempts: int = 100) -> None:
    """Until a background sipp accepts TCP connections on `port` (over UDP, retransmissions cover its
    start-up)."""
    if transport == "udp":
        return
    for _ in range(attempts):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return
    raise AssertionError(f"nothing listens on tcp:127.0.0.1:{port}")
