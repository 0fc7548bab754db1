"""baresip (Debian `baresip`) as a PBX phone on loopback: a WAV as its microphone, what it hears
recorded by `sndfile`, driven over `ctrl_tcp` (JSON commands in netstring framing)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from support.audio import tone_wav
from support.sipp import free_port

BARESIP = shutil.which("baresip")
MODULES = Path("/usr/lib/baresip/modules")
needs_baresip = pytest.mark.skipif(
    BARESIP is None or not MODULES.is_dir(), reason="needs baresip (installed by scripts/setup)"
)
RATE = 8000


class Baresip:
    """One running baresip with one account; `events` collects what its ctrl_tcp reports."""

    def __init__(self, workdir: Path, sip_port: int, ctrl_port: int) -> None:
        self.workdir = workdir
        self.sip_port = sip_port
        self.ctrl_port = ctrl_port
        self.events: list[dict[str, Any]] = []
        self._new = asyncio.Condition()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._token = 0

    async def command(self, command: str, params: str = "") -> None:
        assert self._writer is not None
        self._token += 1
        body = json.dumps({"command": command, "params": params, "token": str(self._token)}).encode()
        self._writer.write(str(len(body)).encode() + b":" + body + b",")
        await self._writer.drain()

    async def read_events(self) -> None:
        assert self._reader is not None
        while True:
            length = int((await self._reader.readuntil(b":"))[:-1])
            payload = await self._reader.readexactly(length + 1)
            message = json.loads(payload[:-1])
            if message.get("event"):
                async with self._new:
                    self.events.append(message)
                    self._new.notify_all()

    async def wait_event(self, type_: str, timeout: float = 30.0) -> dict[str, Any]:
        async def wait() -> dict[str, Any]:
            async with self._new:
                while True:
                    for event in self.events:
                        if event.get("type") == type_:
                            return event
                    await self._new.wait()

        return await asyncio.wait_for(wait(), timeout)

    def heard_pcm(self) -> np.ndarray:
        """What the call made baresip hear (8 kHz mono for G.711); complete once the call ended."""
        return self.heard()[0]

    def heard(self) -> tuple[np.ndarray, int]:
        """What the last call made baresip hear, one channel, and its sample rate (8 kHz for G.711,
        48 kHz for Opus); complete once the call ended."""
        dumps = sorted(self.workdir.glob("dump-*-dec.wav"))
        assert dumps, "baresip recorded nothing"
        for _ in range(50):  # baresip writes the WAV header when it closes the file, just after the call
            try:
                with wave.open(str(dumps[-1]), "rb") as wav:
                    frames = wav.readframes(wav.getnframes())
                    channels = wav.getnchannels()
                    rate = wav.getframerate()
                break
            except (wave.Error, EOFError):
                time.sleep(0.1)
        else:
            raise AssertionError(f"baresip did not finish {dumps[-1].name}")
        pcm = np.frombuffer(frames, dtype=np.int16)
        return (pcm[::channels] if channels > 1 else pcm), rate

    def keys_received(self) -> str:
        """The RFC 4733 keys baresip received, in order."""
        return "".join(str(e.get("param", "")) for e in self.events if e.get("type") == "CALL_DTMF_START")

    def log(self) -> str:
        return (self.workdir / "baresip.log").read_text(errors="replace")


def _config(workdir: Path, sip_port: int, ctrl_port: int, microphone: Path, codecs: tuple[str, ...]) -> str:
    codec_modules = [f"{codec}.so" for codec in codecs]
    modules = [*codec_modules, "aufile.so", "sndfile.so", "ctrl_tcp.so", "menu.so", "account.so"]
    return "\n".join(
        [
            f"module_path {MODULES}",
            f"sip_listen 127.0.0.1:{sip_port}",
            "net_interface 127.0.0.1",
            f"audio_source aufile,{microphone}",
            f"ausrc_srate {RATE}",
            "ausrc_channels 1",
            f"ctrl_tcp_listen 127.0.0.1:{ctrl_port}",
            f"snd_path {workdir}",
            *(f"module {name}" for name in modules),
            "",
        ]
    )


async def _start(
    workdir: Path, microphone: Path, codecs: tuple[str, ...], sip_trace: bool
) -> tuple[asyncio.subprocess.Process, Baresip | None]:
    """Start baresip on free ports; no phone when it exited (a port, or the TLS one above the SIP port,
    was taken meanwhile)."""
    assert BARESIP is not None
    sip_port, ctrl_port = free_port("udp"), free_port("tcp")
    (workdir / "config").write_text(_config(workdir, sip_port, ctrl_port, microphone, codecs))
    trace = ["-s"] if sip_trace else []
    with (workdir / "baresip.log").open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            BARESIP, "-f", str(workdir), *trace, cwd=workdir, stdout=log, stderr=log,
            stdin=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
    phone = Baresip(workdir, sip_port, ctrl_port)
    for _ in range(200):
        if process.returncode is not None:
            break
        try:
            phone._reader, phone._writer = await asyncio.open_connection("127.0.0.1", ctrl_port)
            return process, phone
        except OSError:
            await asyncio.sleep(0.05)
    if process.returncode is None:
        process.terminate()
    await process.wait()
    return process, None


@contextlib.asynccontextmanager
async def running_baresip(
    workdir: Path,
    user: str,
    *,
    tone_hz: float,
    auto_answer: bool = False,
    codecs: tuple[str, ...] = ("g711",),
    registrar: str | None = None,
    password: str | None = None,
    sip_trace: bool = False,
) -> AsyncIterator[Baresip]:
    """baresip with account `user` whose microphone plays a `tone_hz` tone: static (no REGISTER), or
    registering at `registrar` (host:port) with digest `password`. `codecs` names its codec modules in
    order of preference; `sip_trace` writes every SIP message to its log."""
    workdir.mkdir(parents=True, exist_ok=True)
    microphone = workdir / "tone.wav"
    microphone.write_bytes(tone_wav(tone_hz, 30.0, rate=RATE))
    (workdir / "accounts").write_text("")
    (workdir / "contacts").write_text("")
    for _ in range(5):
        process, phone = await _start(workdir, microphone, codecs, sip_trace)
        if phone is not None:
            break
    else:
        raise AssertionError(f"baresip did not start: {(workdir / 'baresip.log').read_text()[-2000:]}")
    try:
        async with asyncio.TaskGroup() as tasks:
            reading = tasks.create_task(phone.read_events())
            params = ";answermode=auto" if auto_answer else ""
            if registrar is None:
                address = f"<sip:{user}@127.0.0.1:{phone.sip_port}>;regint=0"
            else:
                address = f"<sip:{user}@{registrar}>;auth_pass={password};regint=60"
            await phone.command("uanew", address + params)
            try:
                yield phone
            finally:
                reading.cancel()
    finally:
        if phone._writer is not None:
            phone._writer.close()
        if process.returncode is None:
            process.terminate()
        await process.wait()
