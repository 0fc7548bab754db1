"""`switchboard emulator serve | call`: argument parsing and the two entry points.

    switchboard emulator serve --webhook-url http://127.0.0.1:8000/webhooks/whatsapp \
        --port 8090 --numbers numbers.json
    switchboard emulator call --emulator http://127.0.0.1:8090 --to <phone_number_id> \
        --from 15550001111 --tone 440 --dtmf 123# --seconds 10

`numbers.json` is a list of objects with phone_number_id, display_phone_number, waba_id,
access_token and app_secret.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from ._emulator import MetaEmulator

NumbersConfig = Sequence[Mapping[str, str]] | str | Path

_NUMBER_KEYS = ("phone_number_id", "display_phone_number", "waba_id", "access_token", "app_secret")


def load_numbers(numbers_config: NumbersConfig) -> list[dict[str, str]]:
    if isinstance(numbers_config, str | Path):
        loaded: Any = json.loads(Path(numbers_config).read_text("utf-8"))
    else:
        loaded = list(numbers_config)
    numbers = [{key: str(entry[key]) for key in _NUMBER_KEYS} for entry in loaded]
    return numbers


async def run_emulator(
    webhook_url: str,
    host: str,
    port: int,
    numbers_config: NumbersConfig,
    *,
    media_addresses: Sequence[str] = ("127.0.0.1",),
) -> None:
    """Serve the emulator (Graph API, /phone, /_emulator/calls) until cancelled."""
    emulator = MetaEmulator(webhook_url, host=host, port=port, media_addresses=tuple(media_addresses))
    for number in load_numbers(numbers_config):
        emulator.add_business_number(**number)
    async with emulator:
        print(f"Meta emulator: graph_api_url={emulator.graph_url} phone={emulator.phone_url}", flush=True)
        await asyncio.Event().wait()


async def place_call(
    emulator_url: str,
    to: str,
    from_: str,
    *,
    name: str | None = None,
    tone: float | None = 440.0,
    dtmf: str = "",
    dtmf_delay: float = 6.0,
    seconds: float = 10.0,
) -> dict[str, Any]:
    """Ask a running emulator to place a scripted user call; returns (and prints) its report."""
    body = {
        "to": to,
        "from": from_,
        "name": name or from_,
        "tone": tone,
        "dtmf": dtmf,
        "dtmf_delay": dtmf_delay,
        "seconds": seconds,
    }
    async with httpx.AsyncClient(timeout=seconds + 120) as client:
        response = await client.post(emulator_url.rstrip("/") + "/_emulator/calls", json=body)
    result: dict[str, Any] = response.json()
    for line in result.get("log", []):
        print(line)
    print(json.dumps({k: v for k, v in result.items() if k != "log"}, indent=2))
    return result


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="switchboard emulator", description="Meta Cloud API emulator")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the emulator until interrupted")
    serve.add_argument("--webhook-url", required=True, help="the server's WhatsApp webhook URL")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8090)
    serve.add_argument("--numbers", required=True, help="JSON file listing business numbers")
    serve.add_argument("--media-address", action="append", default=None, help="ICE host address")
    call = sub.add_parser("call", help="place a scripted user call through a running emulator")
    call.add_argument("--emulator", default="http://127.0.0.1:8090", help="the emulator's base URL")
    call.add_argument("--to", required=True, help="business phone_number_id")
    call.add_argument("--from", dest="from_", default="15550001111", help="the user's wa_id")
    call.add_argument("--name", default=None)
    call.add_argument("--tone", type=float, default=440.0, help="Hz; 0 for silence")
    call.add_argument("--dtmf", default="", help="keys to press, e.g. 123#")
    call.add_argument("--dtmf-delay", type=float, default=6.0, help="seconds after media starts")
    call.add_argument("--seconds", type=float, default=10.0)
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            asyncio.run(
                run_emulator(
                    args.webhook_url,
                    args.host,
                    args.port,
                    args.numbers,
                    media_addresses=args.media_address or ("127.0.0.1",),
                )
            )
            return 0
        result = asyncio.run(
            place_call(
                args.emulator,
                args.to,
                args.from_,
                name=args.name,
                tone=args.tone or None,
                dtmf=args.dtmf,
                dtmf_delay=args.dtmf_delay,
                seconds=args.seconds,
            )
        )
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        print(f"switchboard emulator: {exc}", file=sys.stderr)
        return 1
    except httpx.TransportError as exc:
        print(f"switchboard emulator: cannot reach the emulator at {args.emulator}: {exc}", file=sys.stderr)
        return 1
    return 0 if result.get("end_status") == "COMPLETED" else 1
