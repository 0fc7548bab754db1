"""baresip (Debian `baresip`) as a PBX phone on loopback: a static account that answers by itself, a WAV
as what it says, and what it hears recorded by the `sndfile` module."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

BARESIP = shutil.which("baresip")
MODULES = Path("/usr/lib/baresip/modules")
needs_baresip = pytest.mark.skipif(
    BARESIP is None or not MODULES.is_dir(),
    reason="needs baresip (Debian baresip, installed by scripts/setup)",
)
STEP = 20.0


@dataclass
class Baresip:
    directory: Path
    port: int
    user: str

    def recordings(self) -> list[Path]:
        """What it heard, one WAV per call (complete once the call has ended)."""
        return sorted(self.directory.glob("dump-*-dec.wav"))

    async def heard(self) -> tuple[np.ndarray, int]:  # type: ignore[type-arg]
        """The samples of the first call it heard, once its recording is complete, and their rate."""
        async with asyncio.timeout(STEP):
            while True:
                with (
                    contextlib.suppress(IndexError, wave.Error, EOFError),
                    wave.open(str(self.recordings()[0]), "rb") as wav,
                ):
                    frames = wav.readframes(wav.getnframes())
                    if frames:
                        pcm = np.frombuffer(frames, dtype=np.int16)
                        return pcm[:: wav.getnchannels()], wav.getframerate()
                await asyncio.sleep(0.1)


def _config(directory: Path, port: int, rtp_ports: tuple[int, int], source: Path) -> str:
    return "\n".join(
        [
            "poll_method epoll",
            f"sip_listen 127.0.0.1:{port}",
            "net_interface 127.0.0.1",
            f"module_path {MODULES}",
            f"audio_source aufile,{source}",
            f"audio_alert aufile,{source}",
            "ausrc_srate 8000",
            "ausrc_channels 1",
            f"rtp_ports {rtp_ports[0]}-{rtp_ports[1]}",
            f"snd_path {directory}",
            "module aufile.so",
            "module sndfile.so",
            "module g711.so",
            "module_app account.so",
            "module_app menu.so",
            "",
        ]
    )


@contextlib.asynccontextmanager
async def running_baresip(
    directory: Path,
    port: int,
    source: Path,
    *,
    user: str = "bob",
    rtp_ports: tuple[int, int] = (26000, 26098),
) -> AsyncIterator[Baresip]:
    """baresip listening on udp:127.0.0.1:`port` as `user` (auto-answer, PCMU/PCMA), saying `source` (an
    8 kHz mono 16-bit WAV); stopped on exit."""
    assert BARESIP is not None
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config").write_text(_config(directory, port, rtp_ports, source))
    (directory / "accounts").write_text(f"<sip:{user}@127.0.0.1>;regint=0;answermode=auto\n")
    process = await asyncio.create_subprocess_exec(
        BARESIP,
        "-f",
        str(directory),
        cwd=directory,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        yield Baresip(directory, port, user)
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()
