"""`switchboard serve | demo | emulator`."""

from __future__ import annotations

import argparse
import errno
import socket
import sys
from pathlib import Path

from switchboard import runtime
from switchboard.config import ConfigError, Settings, load_settings
from switchboard.errors import SwitchboardError
from switchboard.logs import configure_logging


class PortInUse(SwitchboardError):
    """A component's port is taken; the message names the component, the port and the option to change."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="switchboard", description=__doc__)
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--config", type=Path, help="a TOML configuration file")
    serve.add_argument("--host", help="address to listen on (overrides [server] host)")
    serve.add_argument("--port", type=int, help="port to listen on (overrides [server] port)")

    demo = sub.add_parser("demo", help="server + Meta emulator + a sample app, to try by ear")
    demo.add_argument("--port", type=int, default=8080, help="the server's port")
    demo.add_argument("--emulator-port", type=int, default=8081)
    demo.add_argument("--app-port", type=int, default=8082)
    demo.add_argument("--data-dir", type=Path, default=Path("switchboard-data"))

    # Its arguments, --help included, go to the emulator's own parser (see `main`).
    sub.add_parser("emulator", add_help=False, help="the Meta Cloud API emulator: serve, call")
    return parser


def _serve_settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, dict[str, object]] = {"server": {}}
    if args.host:
        overrides["server"]["host"] = args.host
    if args.port is not None:
        overrides["server"]["port"] = args.port
    return load_settings(args.config, overrides=overrides)


def _require_free_ports(host: str, ports: list[tuple[str, int, str]]) -> None:
    """Fail before starting anything if one of `(component, port, option)` cannot be listened on."""
    seen: dict[int, str] = {}
    for component, port, option in ports:
        if port and port in seen:
            raise PortInUse(f"the {seen[port]} and the {component} were both given port {port}")
        seen[port] = component
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                raise PortInUse(
                    f"port {port} on {host} is already in use, so the {component} cannot listen there; "
                    f"stop what holds it or choose another port with {option}"
                ) from None


async def _serve(settings: Settings) -> None:
    from switchboard.server import Server
    from switchboard.store.preflight import display_url, prepare_database

    await prepare_database(settings.database_url)
    server = Server(settings)
    print(f"Switchboard listening on {server.url}  (API docs: {server.url}/docs)", flush=True)
    print(f"database: {display_url(settings.database_url)}", flush=True)
    print(f"Meta webhooks (calls, messages): {settings.public_url}/webhooks/whatsapp", flush=True)
    if not settings.api.all_keys():
        print("warning: no API keys configured ([api] keys): every API request is refused", flush=True)
    await server.serve()


def _run_serve(args: argparse.Namespace) -> None:
    settings = _serve_settings(args)
    port = settings.server.port
    _require_free_ports(settings.server.host, [("server", port, "--port (or [server] port)")])
    settings.server.data_dir.mkdir(parents=True, exist_ok=True)
    runtime.run(_serve(settings), event_loop=settings.server.event_loop)


def _run_demo(args: argparse.Namespace) -> None:
    _require_free_ports(
        "127.0.0.1",
        [
            ("server", args.port, "--port"),
            ("Meta emulator", args.emulator_port, "--emulator-port"),
            ("sample app", args.app_port, "--app-port"),
        ],
    )
    args.data_dir.mkdir(parents=True, exist_ok=True)
    event_loop = load_settings().server.event_loop
    from switchboard.demo.run import run_demo

    runtime.run(run_demo(args.port, args.emulator_port, args.app_port, args.data_dir), event_loop=event_loop)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args, rest = parser.parse_known_args(argv)
    if rest and args.command != "emulator":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    configure_logging(args.log_level)
    try:
        if args.command == "serve":
            _run_serve(args)
        elif args.command == "demo":
            _run_demo(args)
        elif args.command == "emulator":
            from switchboard.emulator.cli import main as emulator_main

            return emulator_main(rest)
    except ConfigError as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 2
    except SwitchboardError as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    except OSError as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
