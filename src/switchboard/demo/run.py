"""`switchboard demo`: the server, the Meta emulator and the sample app, wired together on loopback."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import uvicorn

from switchboard.config import load_settings
from switchboard.demo.app import SampleApp, create_app
from switchboard.emulator import MetaEmulator
from switchboard.server import Server
from switchboard.store.preflight import prepare_database

PHONE_NUMBER_ID = "100200300"
DISPLAY_NUMBER = "15550100200"
WABA_ID = "900800700"
CONFIGURATION_ID = "sample-app"


async def run_demo(port: int, emulator_port: int, app_port: int, data_dir: Path) -> None:
    api_key = secrets.token_urlsafe(24)
    app_secret = secrets.token_hex(16)
    access_token = secrets.token_urlsafe(24)
    server_url = f"http://127.0.0.1:{port}"
    emulator = MetaEmulator(f"{server_url}/webhooks/whatsapp", port=emulator_port)
    emulator.add_business_number(PHONE_NUMBER_ID, DISPLAY_NUMBER, WABA_ID, access_token, app_secret)
    settings = load_settings(
        overrides={
            "server": {"host": "127.0.0.1", "port": port, "data_dir": data_dir, "allow_private_urls": True},
            "api": {"keys": [api_key]},
            "whatsapp": {
                "senders": [
                    {
                        "phone_number_id": PHONE_NUMBER_ID,
                        "display_phone_number": DISPLAY_NUMBER,
                        "waba_id": WABA_ID,
                        "access_token": access_token,
                        "app_secret": app_secret,
                        "verify_token": secrets.token_hex(8),
                        "graph_api_url": f"http://127.0.0.1:{emulator_port}",
                        "inbound": {"action": "SUBSCRIPTION", "calls_configuration_id": CONFIGURATION_ID},
                    }
                ]
            },
        }
    )
    await prepare_database(settings.database_url)
    sample = SampleApp(server_url, api_key)
    app_server = uvicorn.Server(
        uvicorn.Config(create_app(sample), host="127.0.0.1", port=app_port, log_level="warning")
    )
    async with emulator, Server(settings) as server:
        await sample.setup(f"http://127.0.0.1:{app_port}/events", CONFIGURATION_ID)
        app_task = asyncio.create_task(app_server.serve())
        print(
            f"""
Switchboard demo is running.

  server      {server.url}   (API docs: {server.url}/docs, API key: {api_key})
  emulator    {emulator.graph_url}   (Meta's Graph API and webhooks, emulated)
  sample app  http://127.0.0.1:{app_port}/events   (answers, greets, captures digits, reads them back)

Call the business from your browser:  {emulator.phone_url}
Or place a scripted call from another terminal:
  .venv/bin/switchboard emulator call --emulator {emulator.graph_url} --to {PHONE_NUMBER_ID} \\
      --dtmf 123# --seconds 15

Press Ctrl+C to stop.
""",
            flush=True,
        )
        try:
            await app_task
        finally:
            app_server.should_exit = True
            await sample.http.aclose()
