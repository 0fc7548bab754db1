"""Run `switchboard ...` as a user would: a child process, its output, a deadline."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

SWITCHBOARD = [sys.executable, "-m", "switchboard.cli"]
SETTINGS_VARIABLES = ("DATABASE_URL", "SWITCHBOARD_API_KEYS", "SWITCHBOARD_EVENT_LOOP")


def cli_env(**overrides: str) -> dict[str, str]:
    """The environment without the variables that would change the settings, plus `overrides`."""
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARIABLES}
    return {**env, "PYTHONUNBUFFERED": "1", **overrides}


def run_cli(
    *args: str, cwd: Path, timeout: float = 20.0, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SWITCHBOARD, *args],
        cwd=cwd,
        env=env or cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class Running:
    """A started `switchboard` process; a thread reads its stdout so a wait can time out."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        self.process = process
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, args=(process.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for_line(self, needle: str, timeout: float = 20.0) -> str:
        """Read stdout until a line containing `needle`; fail with what was read otherwise."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
            if needle in line:
                return line
        raise AssertionError(f"no line with {needle!r} in {''.join(self.lines)!r}")

    def interrupt(self, timeout: float = 20.0) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout)


@contextmanager
def started_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Iterator[Running]:
    process = subprocess.Popen(
        [*SWITCHBOARD, *args],
        cwd=cwd,
        env=env or cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        yield Running(process)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()
