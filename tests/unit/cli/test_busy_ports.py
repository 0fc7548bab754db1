"""A taken port is named, with the component that wanted it and the option that changes it."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.cli import run_cli
from support.platform import free_port


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_serve_names_its_taken_port(tmp_path: Path, taken_port: int) -> None:
    result = run_cli("serve", "--port", str(taken_port), cwd=tmp_path)

    assert result.returncode == 1
    assert f"port {taken_port} on 127.0.0.1 is already in use" in result.stderr
    assert "server" in result.stderr and "--port" in result.stderr
    assert "listening" not in result.stdout


@pytest.mark.parametrize(
    ("taken", "component", "option"),
    [
        ("--port", "server", "--port"),
        ("--emulator-port", "Meta emulator", "--emulator-port"),
        ("--app-port", "sample app", "--app-port"),
    ],
)
def test_demo_names_the_component_whose_port_is_taken(
    tmp_path: Path, taken_port: int, taken: str, component: str, option: str
) -> None:
    ports = {"--port": free_port(), "--emulator-port": free_port(), "--app-port": free_port()}
    ports[taken] = taken_port
    args = [item for pair in ports.items() for item in (pair[0], str(pair[1]))]

    result = run_cli("demo", *args, "--data-dir", str(tmp_path / "data"), cwd=tmp_path)

    assert result.returncode == 1
    assert f"port {taken_port} on 127.0.0.1 is already in use" in result.stderr
    assert f"the {component} cannot listen there" in result.stderr
    assert f"choose another port with {option}" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_emulator_serve_names_its_taken_port(tmp_path: Path, taken_port: int) -> None:
    numbers = tmp_path / "numbers.json"
    numbers.write_text(
        json.dumps(
            [
                dict.fromkeys(
                    ("phone_number_id", "display_phone_number", "waba_id", "access_token", "app_secret"), "1"
                )
            ]
        )
    )

    result = run_cli(
        "emulator",
        "serve",
        "--webhook-url",
        "http://127.0.0.1:9/webhooks/whatsapp",
        "--numbers",
        str(numbers),
        "--port",
        str(taken_port),
        cwd=tmp_path,
    )

    assert result.returncode == 1
    assert f"the Meta emulator cannot listen on 127.0.0.1:{taken_port}" in result.stderr
    assert "Traceback" not in result.stderr
