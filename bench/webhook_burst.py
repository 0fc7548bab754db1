"""Webhook burst: N signed Meta `connect` webhooks (user-initiated calls) sent at once to one server process.

Processes:
  * server (measured): a real `switchboard.server.Server` in its own process (`multiprocessing`, spawn), on
    the runtime `switchboard serve` uses (uvloop and httptools where installed), with SQLite in a temp dir
    (default) or a fresh PostgreSQL database (`--database postgresql`, dropped afterwards). One API key, one
    WhatsApp sender whose inbound action is a Calls API configuration with one subscription for
    `CALL_RECEIVED`. Its CPU (all threads) is read from /proc/<pid>.
  * bench (this process), one asyncio loop with:
      - a fake Graph API (answers 200 to everything; the calls are never answered, so it hears only the
        `terminate`s of the cleanup);
      - the Calls API app: counts `CALL_RECEIVED` per caller;
      - the burst: N Meta `connect` webhooks, each for its own call and caller with its own Meta-like SDP
        offer, signed with the sender's app secret (`X-Hub-Signature-256`), all built beforehand and then
        POSTed concurrently with httpx, each through its own client and connection (`--client`: one shared
        httpx client, or prepared requests written on asyncio streams).
  * the offers' host candidate is one UDP socket of this process that swallows the server's ICE checks.

Measured:
  * ack latency per webhook: the POST's answer minus the moment the bench started it (`time.perf_counter()`),
    and minus the moment its body was written to the socket (httpx's trace extension): the first includes the
    bench's own connect and send, the second only the server (and the network stack);
  * time to processed: burst start → the moment the Calls API lists all N calls (polled every 50 ms with
    `GET /calls/1/calls?size=1`, its `paging.totalResults`), and → the last `CALL_RECEIVED` at the app;
  * nothing lost: every webhook answered 200, N calls listed, every caller's `CALL_RECEIVED` heard;
  * server CPU per webhook: the server's CPU from burst start until all N calls were listed and every
    `CALL_RECEIVED` was heard (or `--settle` ran out), divided by N; and until the last webhook was answered.

Run: .venv/bin/python bench/webhook_burst.py [--calls 500] [--database postgresql] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import platform
import re
import secrets
import signal
import socket
import ssl
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from connect_latency import (
    ACCESS_TOKEN,
    API_KEY,
    CONFIGURATION_ID,
    DISPLAY_NUMBER,
    PHONE_NUMBER_ID,
    WABA_ID,
    calls_webhook,
    free_port,
    meta_offer,
    proc_cpu_rss,
    read_body,
    respond,
    serve_asgi,
    sign,
    summary,
    thread_cpu,
)

RESULTS = Path(__file__).resolve().parent / "results"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
PG_ASYNC = "postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


def server_main(
    conn: Any,
    port: int,
    data_dir: str,
    database_url: str | None,
    graph_url: str,
    app_secret: str,
    log_level: str,
    profile: str | None,
) -> None:
    """Child process: run a real Server until the parent sends anything on `conn` (cProfile if asked)."""
    import logging

    from switchboard import runtime
    from switchboard.config import load_settings

    logging.basicConfig(level=log_level, format="server %(asctime)s %(levelname)s %(name)s: %(message)s")
    from switchboard.server import Server

    overrides: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "port": port, "data_dir": data_dir, "allow_private_urls": True},
        "api": {"keys": [API_KEY]},
        "whatsapp": {
            "graph_retries": 0,
            "senders": [
                {
                    "phone_number_id": PHONE_NUMBER_ID,
                    "display_phone_number": DISPLAY_NUMBER,
                    "waba_id": WABA_ID,
                    "access_token": ACCESS_TOKEN,
                    "app_secret": app_secret,
                    "verify_token": "bench-verify",
                    "graph_api_url": graph_url,
                    "inbound": {"action": "SUBSCRIPTION", "calls_configuration_id": CONFIGURATION_ID},
                }
            ],
        },
    }
    if database_url:
        overrides["database"] = {"url": database_url}
    settings = load_settings(overrides=overrides, environ={})

    async def run() -> None:
        async with Server(settings):
            loop = asyncio.get_running_loop()
            conn.send(f"{type(loop).__module__}.{type(loop).__name__}")
            await loop.run_in_executor(None, conn.recv)

    if profile is None:
        runtime.run(run(), event_loop=settings.server.event_loop)
        return
    import cProfile

    profiler = cProfile.Profile()
    profiler.runcall(runtime.run, run(), event_loop=settings.server.event_loop)
    profiler.dump_stats(profile)


@dataclass
class Burst:
    app_secret: str = field(default_factory=lambda: secrets.token_hex(16))
    received: dict[str, int] = field(default_factory=dict)
    """CALL_RECEIVED per caller (wa_id) at the app."""
    last_received: float = 0.0
    graph_actions: dict[str, int] = field(default_factory=dict)

    async def graph(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        with contextlib.suppress(ValueError):
            action = str(json.loads(body).get("action"))
            self.graph_actions[action] = self.graph_actions.get(action, 0) + 1
        await respond(send, 200, b'{"success":true}')

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        event = json.loads(await read_body(receive))
        if event.get("type") == "CALL_RECEIVED":
            wa_id = str(event.get("properties", {}).get("call", {}).get("from", ""))
            self.received[wa_id] = self.received.get(wa_id, 0) + 1
            self.last_received = time.perf_counter()
        await respond(send, 200, b"{}")


@contextlib.asynccontextmanager
async def database(kind: str) -> Any:
    """None (SQLite in the data dir) or the URL of a fresh PostgreSQL database, dropped afterwards."""
    if kind == "sqlite":
        yield None
        return
    import asyncpg  # type: ignore[import-untyped]

    admin = await asyncpg.connect(PG_ADMIN)
    name = f"sb_bench_{uuid.uuid4().hex[:12]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ASYNC.format(name=name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def listed_calls(api: httpx.AsyncClient) -> int:
    response = await api.get("/calls/1/calls", params={"size": 1})
    response.raise_for_status()
    return int(response.json()["paging"]["totalResults"])


def sender_clients(args: argparse.Namespace) -> list[httpx.AsyncClient]:
    """The burst's HTTP clients: by default one per webhook (Meta's deliveries are independent; the SSL
    context, unused on http://, is shared because building one costs ≈ 10 ms). `--client httpx-shared`
    sends them all through one client instead, whose connection pool costs O(connections) per request:
    with 500 connections at once that client, not the server, takes seconds of CPU. `--client raw`
    needs none."""
    if args.client == "raw":
        return []
    if args.client == "httpx-shared":
        limits = httpx.Limits(max_connections=args.calls, max_keepalive_connections=args.calls)
        return [httpx.AsyncClient(timeout=args.timeout, limits=limits)]
    context = ssl.create_default_context()
    return [httpx.AsyncClient(timeout=args.timeout, verify=context) for _ in range(args.calls)]


async def raw_post(port: int, request: bytes) -> tuple[int, float]:
    """POST a prepared HTTP/1.1 request on a connection of its own: (status, when it was written)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        sent = time.perf_counter()
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
        await reader.readexactly(int(length.group(1)) if length else 0)
        return status, sent
    finally:
        writer.close()


def raw_request(port: int, body: bytes, signature: str) -> bytes:
    head = (
        f"POST /webhooks/whatsapp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nX-Hub-Signature-256: {signature}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


async def py_spy(out: str, pid: int) -> asyncio.subprocess.Process:
    """py-spy sampling the server (all threads, raw folded stacks) until sent SIGINT."""
    spy = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("py-spy")),
        *("record", "--pid", str(pid), "--rate", "250", "--threads", "--format", "raw", "--output", out),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await asyncio.sleep(1.0)  # attached
    return spy


async def run_once(args: argparse.Namespace, database_url: str | None) -> dict[str, Any]:
    burst = Burst()
    graph_port, app_port, server_port = free_port(), free_port(), free_port()
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.setblocking(False)
    ice_port = sink.getsockname()[1]
    loop = asyncio.get_running_loop()

    def drain() -> None:
        with contextlib.suppress(BlockingIOError):
            while True:
                sink.recv(2048)

    loop.add_reader(sink.fileno(), drain)
    graph_server = await serve_asgi(burst.graph, graph_port)
    app_server = await serve_asgi(burst.app, app_port)
    tmp = tempfile.TemporaryDirectory(prefix="sb-burst-")
    parent, child = mp.Pipe()
    proc = mp.get_context("spawn").Process(
        target=server_main,
        args=(
            child,
            server_port,
            tmp.name,
            database_url,
            f"http://127.0.0.1:{graph_port}",
            burst.app_secret,
            args.server_log_level,
            args.profile,
        ),
        name="switchboard",
        daemon=True,
    )
    proc.start()
    url = f"http://127.0.0.1:{server_port}"
    api = httpx.AsyncClient(base_url=url, headers={"Authorization": f"App {API_KEY}"}, timeout=30)
    senders = sender_clients(args)
    try:
        server_loop = await loop.run_in_executor(None, parent.recv)
        assert proc.pid is not None
        response = await api.post("/calls/1/configurations", json={"id": CONFIGURATION_ID, "name": "burst"})
        assert response.status_code < 300, response.text
        response = await api.post(
            "/subscriptions/1/subscription/VOICE_VIDEO",
            json={
                "name": "burst events",
                "events": ["CALL_RECEIVED"],
                "criteria": [{"callsConfigurationId": CONFIGURATION_ID}],
                "profile": {"webhook": {"notifyUrl": f"http://127.0.0.1:{app_port}/events"}},
            },
        )
        assert response.status_code < 300, response.text

        # one call first, outside the measurement (first-request imports, SQLite pages)
        warm = {"sdp_type": "offer", "sdp": meta_offer(0, ice_port)}
        body = calls_webhook("wacid.WARMUP", "19990000000", "connect", session=warm)
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, burst.app_secret)}
        assert (await api.post("/webhooks/whatsapp", content=body, headers=headers)).status_code == 200
        while await listed_calls(api) < 1 or not burst.received:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)

        wa_ids = [f"1555{i:07d}" for i in range(args.calls)]
        bodies = []
        for i, wa_id in enumerate(wa_ids):
            session = {"sdp_type": "offer", "sdp": meta_offer(i + 1, ice_port)}
            body = calls_webhook(f"wacid.BURST{i:08d}", wa_id, "connect", session=session)
            bodies.append((body, sign(body, burst.app_secret)))
        statuses: list[int | None] = [None] * args.calls
        acks: list[float] = [0.0] * args.calls
        errors: list[str] = []

        sent: list[float] = [0.0] * args.calls

        async def post(i: int) -> None:
            body, signature = bodies[i]

            async def trace(name: str, info: dict[str, Any]) -> None:
                if name == "http11.send_request_body.complete":
                    sent[i] = time.perf_counter()

            started = time.perf_counter()
            if args.client == "raw":
                try:
                    statuses[i], sent[i] = await raw_post(
                        server_port, raw_request(server_port, body, signature)
                    )
                except (OSError, asyncio.IncompleteReadError) as exc:
                    errors.append(f"webhook {i}: {exc!r}")
                answered = time.perf_counter()
                acks[i] = answered - started
                sent[i] = answered - sent[i] if sent[i] else 0.0
                return
            try:
                answer = await senders[i % len(senders)].post(
                    f"{url}/webhooks/whatsapp",
                    content=body,
                    headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature},
                    extensions={"trace": trace},
                )
                statuses[i] = answer.status_code
            except httpx.HTTPError as exc:
                errors.append(f"webhook {i}: {exc!r}")
            answered = time.perf_counter()
            acks[i] = answered - started
            if sent[i]:
                sent[i] = answered - sent[i]

        spy = await py_spy(args.py_spy, proc.pid) if args.py_spy else None
        load = [round(x, 2) for x in os.getloadavg()]
        cpu0, rss0 = proc_cpu_rss(proc.pid)
        threads0 = thread_cpu(proc.pid)
        self_cpu0 = time.process_time()
        t0 = time.perf_counter()
        async with asyncio.TaskGroup() as tasks:
            for i in range(args.calls):
                tasks.create_task(post(i))
        acked = time.perf_counter()
        cpu_acked, _ = proc_cpu_rss(proc.pid)
        listed = 0
        deadline = t0 + args.settle
        while time.perf_counter() < deadline:
            listed = await listed_calls(api) - 1
            if listed >= args.calls:
                break
            await asyncio.sleep(0.05)
        processed = time.perf_counter()
        while time.perf_counter() < deadline and len(burst.received) < args.calls + 1:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        cpu1, rss1 = proc_cpu_rss(proc.pid)
        threads1 = thread_cpu(proc.pid)
        self_cpu = time.process_time() - self_cpu0
        wall = time.perf_counter() - t0
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            await spy.wait()
        load_after = [round(x, 2) for x in os.getloadavg()]
    finally:
        parent.send("stop")
        await loop.run_in_executor(None, proc.join, 60)
        if proc.is_alive():
            print("the server did not stop within 60 s: killed", file=sys.stderr)
            proc.kill()
        await api.aclose()
        for client in senders:
            await client.aclose()
        graph_server.should_exit = app_server.should_exit = True
        loop.remove_reader(sink.fileno())
        sink.close()
        tmp.cleanup()
        await asyncio.sleep(0.2)

    heard = [w for w in wa_ids if burst.received.get(w)]
    return {
        "benchmark": "webhook_burst",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "database": args.database,
        "sender": {
            "httpx": "an httpx client per webhook",
            "httpx-shared": "one httpx client",
            "raw": "asyncio streams, a connection per webhook",
        }[args.client],
        "server_loop": server_loop,
        "load_average_before": load,
        "load_average_after": load_after,
        "calls": args.calls,
        "ack": summary(acks),
        "ack_from_sent": summary([s for s in sent if s]),
        "ack_all_s": round(acked - t0, 3),
        "webhook_200": sum(1 for s in statuses if s == 200),
        "webhook_other": {str(s): statuses.count(s) for s in set(statuses) if s != 200},
        "calls_listed": listed,
        "processed_all_s": round(processed - t0, 3) if listed >= args.calls else None,
        "call_received_heard": len(heard),
        "call_received_duplicates": sum(burst.received.get(w, 0) - 1 for w in heard),
        "last_call_received_s": round(burst.last_received - t0, 3) if heard else None,
        "lost": args.calls - min(listed, len(heard)),
        "server_cpu_ms_per_webhook": round((cpu1 - cpu0) / args.calls * 1000, 2),
        "server_cpu_ms_per_webhook_until_acked": round((cpu_acked - cpu0) / args.calls * 1000, 2),
        "server_cpu_percent_of_core": round((cpu1 - cpu0) / wall * 100, 1),
        "server_thread_cpu_s": {
            name: round(cpu - threads0.get(name, 0.0), 2) for name, cpu in sorted(threads1.items())
        },
        "server_rss_mb": [round(rss0 / 2**20, 1), round(rss1 / 2**20, 1)],
        "bench_cpu_s": round(self_cpu, 2),
        "graph_actions": burst.graph_actions,
        "errors": errors[:10],
        "error_count": len(errors),
    }


def print_row(r: dict[str, Any]) -> None:
    a, b = r["ack"], r["ack_from_sent"]
    print(
        f"{r['date']} {r['database']:10} {r['sender'][:12]:12} load {r['load_average_before'][0]:>5}  "
        f"ack p50 {a['p50_ms']:>7} "
        f"p90 {a['p90_ms']:>7} p99 {a['p99_ms']:>7} max {a['max_ms']:>7} ms "
        f"(from sent: p50 {b['p50_ms']} p99 {b['p99_ms']})  "
        f"all acked {r['ack_all_s']} s  "
        f"processed {r['processed_all_s']} s  CALL_RECEIVED {r['call_received_heard']}/{r['calls']} "
        f"(last {r['last_call_received_s']} s)  200s {r['webhook_200']}  lost {r['lost']}  "
        f"CPU {r['server_cpu_ms_per_webhook']} ms/webhook ({r['server_cpu_ms_per_webhook_until_acked']} "
        f"until acked)  errors {r['error_count']}"
    )
    for error in r["errors"][:3]:
        print("   ", error)


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    results = []
    for _ in range(args.repeat):
        async with database(args.database) as url:
            result = await run_once(args, url)
        print_row(result)
        results.append(result)
        await asyncio.sleep(args.pause)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=500, help="webhooks in the burst (default 500)")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--repeat", type=int, default=1, help="runs, each with a fresh server and database")
    parser.add_argument("--pause", type=float, default=2.0, help="seconds between runs")
    parser.add_argument("--timeout", type=float, default=60.0, help="the sender's HTTP timeout (Meta: 20 s)")
    parser.add_argument("--settle", type=float, default=120.0, help="max seconds until all are processed")
    parser.add_argument(
        "--client",
        choices=["httpx", "httpx-shared", "raw"],
        default="httpx",
        help="the burst's sender: an httpx client per webhook (default), one shared httpx client, or "
        "prepared requests on asyncio streams (the cheapest sender: the least of the bench in the figures)",
    )
    parser.add_argument("--server-log-level", default="WARNING")
    parser.add_argument("--profile", help="write a cProfile of the server here (slows it: not for figures)")
    parser.add_argument("--py-spy", help="record the server with py-spy (pip py-spy) into this raw file")
    parser.add_argument(
        "--out",
        type=Path,
        help="result JSON (default bench/results/webhook_burst-<database>-<client>-<time>.json)",
    )
    args = parser.parse_args()
    results = asyncio.run(main_async(args))
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    out = args.out or RESULTS / f"webhook_burst-{args.database}-{args.client}-{stamp}.json"
    out.write_text(json.dumps(results if len(results) > 1 else results[0], indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
