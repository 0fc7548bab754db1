"""A Switchboard server in its own process (`switchboard serve --config ...`), for tests that crash it
(`kill -9`) or run several on one database."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(str(value))


def to_toml(config: dict[str, Any]) -> str:
    """A small TOML writer for test configurations: tables of scalars, and arrays of tables."""
    lines: list[str] = []
    for section, values in config.items():
        if isinstance(values, list):
            for item in values:
                lines.append(f"[[{section}]]")
                lines += [f"{k} = {toml_value(v)}" for k, v in item.items()]
            continue
        lines.append(f"[{section}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


class ServerProcess:
    def __init__(self, config: dict[str, Any], directory: Path, *, name: str = "server") -> None:
        self.port = int(config["server"]["port"])
        self.url = f"http://127.0.0.1:{self.port}"
        self._config_path = directory / f"{name}.toml"
        self._config_path.write_text(to_toml(config))
        self._log_path = directory / f"{name}.log"
        self._process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def log(self) -> str:
        return self._log_path.read_text(errors="replace") if self._log_path.exists() else ""

    async def start(self, timeout: float = 30.0) -> None:
        with self._log_path.open("ab") as log:
            process = self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "switchboard.cli",
                "serve",
                "--config",
                str(self._config_path),
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        async with httpx.AsyncClient() as client, asyncio.timeout(timeout):
            while True:
                if process.returncode is not None:
                    raise RuntimeError(f"the server exited ({process.returncode}):\n{self.log()}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.url}/health", timeout=1)).status_code == 200:
                        return
                await asyncio.sleep(0.1)

    async def kill(self) -> None:
        """`kill -9`: no shutdown code runs."""
        process = self._process
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGKILL)
            await process.wait()

    async def stop(self, timeout: float = 30.0) -> int:
        process = self._process
        if process is None or process.returncode is not None:
            return process.returncode or 0 if process else 0
        process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(timeout):
                return await process.wait()
        except TimeoutError:
            process.kill()
            return await process.wait()
