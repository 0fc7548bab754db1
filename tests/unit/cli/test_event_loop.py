"""The entry points run on uvloop with httptools where installed; asyncio's loop can be forced."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from support.cli import cli_env, started_cli
from support.platform import free_port
from switchboard import runtime
from switchboard.config import ConfigError, load_settings


async def loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_auto_is_uvloop_and_httptools_when_installed() -> None:
    pytest.importorskip("uvloop")
    pytest.importorskip("httptools")
    assert runtime.event_loop_name("auto") == "uvloop"
    assert runtime.http_parser_name("auto") == "httptools"
    assert runtime.run(loop_module()).startswith("uvloop")


def test_asyncio_and_h11_can_be_forced() -> None:
    assert runtime.event_loop_name("asyncio") == "asyncio"
    assert runtime.http_parser_name("h11") == "h11"
    assert runtime.run(loop_module(), event_loop="asyncio").startswith("asyncio")


def test_the_environment_forces_the_event_loop_and_a_bad_name_is_named() -> None:
    assert load_settings(environ={}).server.event_loop == "auto"
    settings = load_settings(environ={"SWITCHBOARD_EVENT_LOOP": "asyncio"})
    assert settings.server.event_loop == "asyncio"
    with pytest.raises(ConfigError, match=r"server\.event_loop"):
        load_settings(environ={"SWITCHBOARD_EVENT_LOOP": "trio"})


def test_serve_runs_on_asyncio_when_told_to(tmp_path: Path) -> None:
    port = free_port()
    env = cli_env(SWITCHBOARD_EVENT_LOOP="asyncio")
    with started_cli("serve", "--port", str(port), cwd=tmp_path, env=env) as serve:
        serve.wait_for_line(f"listening on http://127.0.0.1:{port}")
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
        assert serve.interrupt() == 0
