"""`switchboard demo`: the server, the Meta emulator and the sample app, wired together on loopback."""

from __future__ import annotations

import asyncio
import secrets
import socket
from pathlib import Path

import uvicorn

from switchboard.config import Settings, load_settings
from switchboard.demo.app import SampleApp, create_app
from switchboard.emulator import MetaEmulator
from switchboard.server import Server
from switchboard.store.preflight import prepare_database

HOST = "127.0.0.1"
PHONE_NUMBER_ID = "100200300"
DISPLAY_NUMBER = "15550100200"
WABA_ID = "900800700"
CONFIGURATION_ID = "sample-app"


def _settings(
    port: int, emulator_url: str, data_dir: Path, api_key: str, app_secret: str, token: str
) -> Settings:
    return load_settings(
        overrides={
            "server": {"host": HOST, "port": port, "data_dir": data_dir, "allow_private_urls": True},
            "api": {"keys": [api_key]},
            "whatsapp": {
                "senders": [
                    {
                        "phone_number_id": PHONE_NUMBER_ID,
                        "display_phone_number": DISPLAY_NUMBER,
                        "waba_id": WABA_ID,
                        "access_token": token,
                        "app_secret": app_secret,
                        "verify_token": secrets.token_hex(8),
                        "graph_api_url": emulator_url,
                        "inbound": {"action": "SUBSCRIPTION", "calls_configuration_id": CONFIGURATION_ID},
                    }
                ]
            },
        }
    )


def _listen(port: int) -> socket.socket:
    """The sample app's socket, listening before its URL is printed, so a browser never races it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, port))
    sock.listen(128)
    return sock


def _banner(server: Server, api_key: str, emulator: MetaEmulator, app_url: str) -> str:
    return f"""
Switchboard demo is running.

  server      {server.url}   (API docs: {server.url}/docs, API key: {api_key})
  emulator    {emulator.graph_url}   (Meta's Graph API and webhooks, emulated)
  sample app  {app_url}   (answers, greets, captures digits, reads them back)

Call the business from your browser:  {emulator.phone_url}
Or place a scripted call from another terminal:
  .venv/bin/switchboard emulator call --emulator {emulator.graph_url} --to {PHONE_NUMBER_ID} \\
      --dtmf 123# --seconds 15

Press Ctrl+C to stop.
"""


async def run_demo(port: int, emulator_port: int, app_port: int, data_dir: Path) -> None:
    api_key = secrets.token_urlsafe(24)
    app_secret = secrets.token_hex(16)
    access_token = secrets.token_urlsafe(24)
    server_url = f"http://{HOST}:{port}"
    emulator = MetaEmulator(f"{server_url}/webhooks/whatsapp", port=emulator_port)
    emulator.add_business_number(PHONE_NUMBER_ID, DISPLAY_NUMBER, WABA_ID, access_token, app_secret)
    settings = _settings(port, emulator.graph_url, data_dir, api_key, app_secret, access_token)
    await prepare_database(settings.database_url)
    sample = SampleApp(server_url, api_key)
    app_server = uvicorn.Server(uvicorn.Config(create_app(sample), log_level="warning"))
    app_url = f"http://{HOST}:{app_port}/"
    async with emulator, Server(settings) as server:
        await sample.setup(f"{app_url}events", CONFIGURATION_ID)
        app_task = asyncio.create_task(app_server.serve(sockets=[_listen(app_port)]))
        print(_banner(server, api_key, emulator, app_url), flush=True)
        try:
            await app_task
        finally:
            app_server.should_exit = True
            await sample.http.aclose()
