"""Request bodies are capped while they are read: a 1 GB body, sent without credentials, chunked or with an
honest Content-Length, leaves a real server process's memory where it was."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from support.audio import tone_wav
from support.cli import started_cli
from support.platform import free_port

pytestmark = pytest.mark.e2e

API_KEY = "limits-api-key-0123456789"
GIGABYTE = 1024**3
LARGE = 256 * 1024**2
CHUNK = b"x" * (1024 * 1024)
MAX_RSS = 300 * 1024 * 1024


async def lazily(size: int, head: bytes = b"") -> AsyncIterator[bytes]:
    """`head`, then `size` bytes made as they are sent: never more than one chunk in memory."""
    yield head
    for _ in range(size // len(CHUNK)):
        yield CHUNK


def peak_rss(pid: int) -> int:
    """The process's resident set high-water mark (`VmHWM`), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/<pid>/status")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    config = tmp_path / "switchboard.toml"
    config.write_text(
        f'[server]\nport = {port}\ndata_dir = "{tmp_path / "data"}"\n'
        f'[api]\nkeys = ["{API_KEY}"]\nmax_upload_bytes = 2_000_000\n'
    )
    with started_cli("serve", "--config", str(config), cwd=tmp_path) as running:
        running.wait_for_line("listening on", timeout=60)
        yield f"http://127.0.0.1:{port}", running.process.pid


async def send(client: httpx.AsyncClient, path: str, **kwargs: object) -> int | None:
    """The status the server answered, or None when it closed the connection on the refused body."""
    try:
        response = await client.post(path, **kwargs)  # type: ignore[arg-type]
    except httpx.TransportError:
        return None
    return response.status_code


async def test_gigabyte_bodies_do_not_grow_the_server(server: tuple[str, int]) -> None:
    url, pid = server
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        assert (await client.get("/health")).status_code == 200
        before = peak_rss(pid)
        assert await send(client, "/webhooks/whatsapp", content=lazily(GIGABYTE)) in (401, 413, None)
        signed = {"X-Hub-Signature-256": "sha256=" + "0" * 64}
        signed_body = lazily(GIGABYTE)
        assert await send(client, "/webhooks/whatsapp", content=signed_body, headers=signed) in (413, None)
        auth = {"Authorization": f"App {API_KEY}"}
        upload = {**auth, "Content-Type": "multipart/form-data; boundary=b"}
        part = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\nRIFF'
        assert await send(client, "/calls/1/files", content=lazily(LARGE, part), headers=upload) in (
            413,
            None,
        )
        json_body = {**auth, "Content-Type": "application/json"}
        assert await send(client, "/calls/1/configurations", content=lazily(LARGE), headers=json_body) in (
            413,
            None,
        )
        assert (await client.get("/health")).status_code == 200
    peak = peak_rss(pid)
    assert peak < MAX_RSS, f"the server grew from {before >> 20} MB to {peak >> 20} MB"


async def test_declared_oversized_bodies_are_refused_before_reading(server: tuple[str, int]) -> None:
    url, _ = server
    reader, writer = await asyncio.open_connection(*url.removeprefix("http://").split(":"))
    try:
        writer.write(
            b"POST /calls/1/files HTTP/1.1\r\nHost: x\r\n"
            + f"Authorization: App {API_KEY}\r\n".encode()
            + b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 3000000\r\n\r\n"
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 413"), head
        length = int(
            next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(b":")[1]
        )
        body = await reader.readexactly(length)
    finally:
        writer.close()
    assert b'"PAYLOAD_TOO_LARGE"' in body
    assert b"max_upload_bytes" in body and b"2000000" in body


async def test_uploads_within_the_limit_still_work(server: tuple[str, int]) -> None:
    url, _ = server
    wav = tone_wav(440, 0.5)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"App {API_KEY}"}) as client:
        uploaded = await client.post("/calls/1/files", files={"file": ("a.wav", wav, "audio/wav")})
        assert uploaded.status_code == 200, uploaded.text
        assert uploaded.json()["size"] == len(wav) and uploaded.json()["fileFormat"] == "WAV"
        big = tone_wav(440, 0.5) + b"\x00" * 2_100_000
        refused = await client.post("/calls/1/files", files={"file": ("b.wav", big, "audio/wav")})
        assert refused.status_code == 413
        assert "max_upload_bytes" in refused.json()["requestError"]["serviceException"]["text"]
        listed = (await client.get("/calls/1/files")).json()["results"]
        assert [f["name"] for f in listed] == ["a.wav"]
