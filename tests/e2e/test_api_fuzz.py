"""Schemathesis (its CLI, `st run`) generates requests from the served OpenAPI document, valid and
invalid, for every route, with an API key, against a running server: none may answer with a server error.

The server's outgoing HTTP goes through a network the test controls: every name fails to resolve and
every permitted address is answered in-process, so the URLs it is given reach nobody. The run is bounded
in examples and in time."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import pytest

from support.fakes import FakeSynthesizer
from support.network import RecordingNetwork, ScriptedResolver
from support.platform import free_port
from switchboard.config import Settings, load_settings
from switchboard.server import Overrides, Server

pytestmark = pytest.mark.e2e

API_KEY = "fuzz-api-key-0123456789"
EXAMPLES = 20
MAX_TIME_S = 75
ST = shutil.which("st", path=str(Path(sys.executable).parent))


def fuzz_settings(tmp_path: Path, port: int) -> Settings:
    return load_settings(
        overrides={
            "server": {"host": "127.0.0.1", "port": port, "data_dir": tmp_path / "data"},
            "api": {"keys": [API_KEY]},
            "whatsapp": {
                "graph_retries": 0,
                "senders": [
                    {
                        "phone_number_id": "100200300",
                        "display_phone_number": "15550100200",
                        "waba_id": "900800700",
                        "access_token": "fuzz-token",
                        "app_secret": "fuzz-secret",
                        "verify_token": "fuzz-verify",
                        "graph_api_url": "https://graph.invalid",
                        "inbound": {"action": "SUBSCRIPTION", "calls_configuration_id": "app"},
                    }
                ],
            },
        },
        environ={},
    )


@pytest.mark.skipif(ST is None, reason="needs schemathesis (a development dependency)")
async def test_no_generated_request_makes_a_server_error(tmp_path: Path) -> None:
    assert ST is not None
    port = free_port()
    settings = fuzz_settings(tmp_path, port)
    overrides = Overrides(
        speech=FakeSynthesizer(tmp_path), resolver=ScriptedResolver({}), network=RecordingNetwork()
    )
    async with Server(settings, overrides) as server:
        process = await asyncio.create_subprocess_exec(
            ST,
            "run",
            f"{server.url}/openapi.json",
            "--header",
            f"Authorization: App {API_KEY}",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            str(EXAMPLES),
            "--max-time",
            str(MAX_TIME_S),
            "--seed",
            "20260101",
            # One worker: parallel workers are threads, and Hypothesis describing its strategies with
            # `ast.parse` from several threads at once fails on Python 3.11 ("recursion depth mismatch").
            "--workers",
            "1",
            "--request-timeout",
            "15",
            "--no-color",
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(process.communicate(), MAX_TIME_S + 60)
    report = output.decode(errors="replace")
    assert process.returncode == 0, report[-12000:]
    assert "Server error" not in report
