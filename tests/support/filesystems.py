"""A small filesystem of its own, to fill up (ENOSPC) under a running server.

A tmpfs where mounting is allowed (root, or a user namespace that permits it), else an ext4 image on a loop
device; the test is skipped, with the reasons, when neither can be mounted here.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def _run(*command: str) -> str | None:
    """None when `command` succeeded, else why not."""
    if shutil.which(command[0]) is None:
        return f"{command[0]} is not installed"
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{' '.join(command)}: {exc}"
    if done.returncode != 0:
        return f"{' '.join(command)}: {(done.stderr or done.stdout).strip() or done.returncode}"
    return None


@contextlib.contextmanager
def small_filesystem(mountpoint: Path, megabytes: int) -> Iterator[Path]:
    """`mountpoint` with a filesystem of `megabytes` mounted on it, unmounted afterwards."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    why_not = _run("mount", "-t", "tmpfs", "-o", f"size={megabytes}m,mode=0700", "tmpfs", str(mountpoint))
    if why_not is not None:
        image = mountpoint.with_name(mountpoint.name + ".img")
        with image.open("wb") as file:
            file.truncate(megabytes * 1024 * 1024)
        loop_failed = _run("mkfs.ext4", "-q", "-F", str(image)) or _run(
            "mount", "-o", "loop", str(image), str(mountpoint)
        )
        if loop_failed is not None:
            pytest.skip(f"cannot mount a small filesystem: {why_not}; {loop_failed}")
    try:
        yield mountpoint
    finally:
        _run("umount", "-l", str(mountpoint))


def fill(directory: Path, name: str = "filler") -> Path:
    """Write a file in `directory` until its filesystem has no space left (ENOSPC)."""
    path = directory / name
    chunk = b"\0" * 65536
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        while True:
            try:
                os.write(fd, chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                if len(chunk) == 1:
                    return path
                chunk = chunk[: len(chunk) // 2]
    finally:
        os.close(fd)
