"""Connect latency: Meta `connect` webhook (user-initiated call) → the server's Graph `pre_accept` request.

Processes:
  * server (measured): a real `switchboard.server.Server` (SQLite in a temp dir, embedded media engine, one
    API key) in its own process, started with `multiprocessing` (spawn), on the runtime `switchboard serve`
    uses (uvloop and httptools where installed; `--event-loop` and `--http-parser` choose). Its CPU and RSS
    are read from /proc/<pid> at the start and end of the load window.
  * bench (this process), one asyncio loop with:
      - a fake Graph API: answers every `POST /{version}/{phone-number-id}/calls` with 200 `{"success": true}`
        and timestamps each `pre_accept` / `accept` / `terminate` (arrival time, Meta call id);
      - the Calls API app: an HTTP server receiving the subscription's webhooks; on `CALL_RECEIVED` it answers
        200 and POSTs `/calls/1/calls/{callId}/pre-answer` to the server with the API key;
      - the load sender: signed (`X-Hub-Signature-256`) Meta `connect` webhooks with a Meta-like SDP offer
        (ICE-lite, ufrag/pwd, sha-256 fingerprint, Opus/111 + telephone-event/8000 on 126, one host
        candidate on 127.0.0.1), sent at absolute schedule times `t0 + i / rate` from one loop timer, and a
        `terminate` webhook `--hold` seconds after each call's `pre_accept` so media legs do not pile up.
  * the offers' host candidate is one UDP socket of this process that swallows the server's ICE checks
    (never answered: ICE stays in checking until the call is terminated).

Measured per call: latency = arrival of `pre_accept` at the fake Graph minus the moment the bench started the
`connect` POST (both read with `time.perf_counter()` in this process). Split into
  webhook → CALL_RECEIVED arrives at the app, and CALL_RECEIVED at the app → `pre_accept` (app + API + SDP).

Run: .venv/bin/python bench/connect_latency.py [--rate 20] [--duration 15] [--hold 2] [--event-loop asyncio]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import multiprocessing as mp
import os
import platform
import secrets
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn

RESULTS = Path(__file__).resolve().parent / "results"
PHONE_NUMBER_ID = "100200300"
DISPLAY_NUMBER = "15550100200"
WABA_ID = "900800700"
CONFIGURATION_ID = "bench-app"
API_KEY = "bench-api-key-0123456789abcdef"
ACCESS_TOKEN = "bench-access-token"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

Asgi = Callable[
    [dict[str, Any], Callable[[], Awaitable[dict[str, Any]]], Callable[..., Awaitable[None]]], Any
]


# --- the server process ------------------------------------------------------------------------------------


def server_main(
    conn: Any,
    port: int,
    data_dir: str,
    graph_url: str,
    app_secret: str,
    log_level: str,
    profile: str | None,
    runtime_choice: dict[str, str],
) -> None:
    """Child process: run a real Server until the parent sends anything on `conn` (cProfile if asked)."""
    import logging

    from switchboard import runtime
    from switchboard.config import load_settings

    logging.basicConfig(level=log_level, format="server %(asctime)s %(levelname)s %(name)s: %(message)s")
    from switchboard.server import Server

    settings = load_settings(
        overrides={
            "server": {
                "host": "127.0.0.1",
                "port": port,
                "data_dir": data_dir,
                "allow_private_urls": True,
                **runtime_choice,
            },
            "api": {"keys": [API_KEY]},
            "whatsapp": {
                "graph_retries": 0,
                "graph_timeout_s": 10.0,
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
        },
        environ={},
    )

    async def run() -> None:
        async with Server(settings):
            loop = asyncio.get_running_loop()
            conn.send(
                {
                    "event_loop": f"{type(loop).__module__}.{type(loop).__name__}",
                    "http_parser": runtime.http_parser_name(settings.server.http_parser),
                }
            )
            await loop.run_in_executor(None, conn.recv)

    # the loop `switchboard serve` runs on (uvloop where installed, unless --event-loop says otherwise)
    if profile is None:
        runtime.run(run(), event_loop=settings.server.event_loop)
        return
    import cProfile

    profiler = cProfile.Profile()
    profiler.runcall(runtime.run, run(), event_loop=settings.server.event_loop)
    profiler.dump_stats(profile)


def proc_cpu_rss(pid: int) -> tuple[float, int]:
    """(user+system CPU seconds of all threads, RSS bytes) of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
    rss = int(fields[21]) * PAGE
    return cpu, rss


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of a process's main thread (the event loop) and of its other threads (aiosqlite, ...)."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            name = "event loop (main thread)" if task.name == str(pid) else "other threads"
            out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- Meta-shaped webhooks --------------------------------------------------------------------------------


def meta_offer(index: int, ice_port: int) -> str:
    """A Meta-edge-like offer: ICE-lite, actpass, Opus/111, telephone-event/8000 (126), a host candidate."""
    ufrag = secrets.token_hex(4)
    pwd = secrets.token_hex(12)
    fingerprint = ":".join(f"{b:02X}" for b in hashlib.sha256(f"bench-{index}".encode()).digest())
    session = 4611731400430051000 + index
    lines = [
        "v=0",
        f"o=- {session} 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=ice-lite",
        "a=group:BUNDLE audio",
        "a=msid-semantic: WMS",
        f"m=audio {ice_port} UDP/TLS/RTP/SAVPF 111 126",
        "c=IN IP4 127.0.0.1",
        "a=rtcp-mux",
        "a=mid:audio",
        "a=sendrecv",
        f"a=ice-ufrag:{ufrag}",
        f"a=ice-pwd:{pwd}",
        f"a=fingerprint:sha-256 {fingerprint}",
        "a=setup:actpass",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=rtpmap:126 telephone-event/8000",
        f"a=ssrc:{1000 + index} cname:bench{index}",
        f"a=candidate:1 1 udp 2122260223 127.0.0.1 {ice_port} typ host generation 0",
        "a=end-of-candidates",
    ]
    return "\r\n".join(lines) + "\r\n"


def calls_webhook(call_id: str, wa_id: str, event: str, **fields: Any) -> bytes:
    entry: dict[str, Any] = {
        "id": call_id,
        "to": DISPLAY_NUMBER,
        "from": wa_id,
        "event": event,
        "timestamp": str(int(time.time())),
        "direction": "USER_INITIATED",
        **fields,
    }
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": DISPLAY_NUMBER, "phone_number_id": PHONE_NUMBER_ID},
        "contacts": [{"profile": {"name": f"Bench {wa_id[-4:]}"}, "wa_id": wa_id}],
        "calls": [entry],
    }
    document = {
        "object": "whatsapp_business_account",
        "entry": [{"id": WABA_ID, "changes": [{"value": value, "field": "calls"}]}],
    }
    return json.dumps(document, separators=(",", ":")).replace("/", "\\/").encode()


def sign(body: bytes, app_secret: str) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


# --- tiny ASGI servers (no framework: keep the bench's own overhead small) ------------------------------


async def read_body(receive: Callable[[], Awaitable[dict[str, Any]]]) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


def header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode()
    return None


async def respond(send: Callable[..., Awaitable[None]], status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@dataclass
class CallTimes:
    index: int
    call_id: str
    wa_id: str
    sent: float = 0.0
    webhook_status: int | None = None
    event: float | None = None
    """CALL_RECEIVED arrived at the app."""
    event_id: str | None = None
    pre_answer_status: int | None = None
    pre_accept: float | None = None
    terminated: bool = False


@dataclass
class Bench:
    rate: float
    duration: float
    hold: float
    app_secret: str = field(default_factory=lambda: secrets.token_hex(16))
    calls: dict[str, CallTimes] = field(default_factory=dict)
    by_wa_id: dict[str, CallTimes] = field(default_factory=dict)
    graph_actions: dict[str, int] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    duplicate_call_received: int = 0
    duplicate_same_event_id: int = 0
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    server_url: str = ""
    api: httpx.AsyncClient | None = None
    webhook_client: httpx.AsyncClient | None = None

    def spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # fake Graph API
    async def graph(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        now = time.perf_counter()
        try:
            data = json.loads(body)
        except ValueError:
            data = {}
        action = str(data.get("action"))
        self.graph_actions[action] = self.graph_actions.get(action, 0) + 1
        call = self.calls.get(str(data.get("call_id")))
        if call is not None and action == "pre_accept" and call.pre_accept is None:
            call.pre_accept = now
            self.spawn(self.terminate_later(call))
        await respond(send, 200, b'{"success":true}')

    # the Calls API app
    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        now = time.perf_counter()
        event = json.loads(body)
        kind = str(event.get("type"))
        self.events[kind] = self.events.get(kind, 0) + 1
        if kind == "CALL_RECEIVED":
            wa_id = str(event.get("properties", {}).get("call", {}).get("from", ""))
            call = self.by_wa_id.get(wa_id)
            if call is None:
                self.errors.append(f"CALL_RECEIVED for an unknown caller: {body[:300]!r}")
            elif call.event is not None:
                # at-least-once delivery: answer only the first; the same X-Event-Id means the same outbox row
                self.duplicate_call_received += 1
                if header(scope, b"x-event-id") == call.event_id:
                    self.duplicate_same_event_id += 1
            else:
                call.event = now
                call.event_id = header(scope, b"x-event-id")
                self.spawn(self.pre_answer(call, str(event["callId"])))
        await respond(send, 200, b"{}")

    async def pre_answer(self, call: CallTimes, server_call_id: str) -> None:
        assert self.api is not None
        try:
            response = await self.api.post(f"/calls/1/calls/{server_call_id}/pre-answer", json={})
            call.pre_answer_status = response.status_code
            if response.status_code >= 300:
                self.errors.append(
                    f"pre-answer {server_call_id}: {response.status_code} {response.text[:200]}"
                )
        except httpx.HTTPError as exc:
            self.errors.append(f"pre-answer {server_call_id}: {exc!r}")

    async def post_webhook(self, body: bytes) -> int:
        assert self.webhook_client is not None
        response = await self.webhook_client.post(
            f"{self.server_url}/webhooks/whatsapp",
            content=body,
            headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, self.app_secret)},
        )
        return response.status_code

    async def connect(self, call: CallTimes, ice_port: int) -> None:
        offer = meta_offer(call.index, ice_port)
        body = calls_webhook(call.call_id, call.wa_id, "connect", session={"sdp_type": "offer", "sdp": offer})
        call.sent = time.perf_counter()
        try:
            call.webhook_status = await self.post_webhook(body)
        except httpx.HTTPError as exc:
            self.errors.append(f"connect {call.call_id}: {exc!r}")

    async def terminate_later(self, call: CallTimes) -> None:
        await asyncio.sleep(self.hold)
        body = calls_webhook(call.call_id, call.wa_id, "terminate", status="COMPLETED")
        try:
            status = await self.post_webhook(body)
            call.terminated = status < 300
        except httpx.HTTPError as exc:
            self.errors.append(f"terminate {call.call_id}: {exc!r}")


async def serve_asgi(app: Asgi, port: int) -> uvicorn.Server:
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            interface="asgi3",
        )
    )
    asyncio.get_running_loop().create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn exposes a flag, not an event)
        await asyncio.sleep(0.02)
    return server


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(values: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values]
    return {
        "count": len(ms),
        "p50_ms": round(percentile(ms, 0.5), 2),
        "p90_ms": round(percentile(ms, 0.9), 2),
        "p99_ms": round(percentile(ms, 0.99), 2),
        "max_ms": round(max(ms), 2) if ms else float("nan"),
        "mean_ms": round(statistics.fmean(ms), 2) if ms else float("nan"),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    bench = Bench(rate=args.rate, duration=args.duration, hold=args.hold)
    total = round(args.rate * args.duration)
    graph_port, app_port, server_port = free_port(), free_port(), free_port()
    graph_url = f"http://127.0.0.1:{graph_port}"
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.setblocking(False)
    ice_port = sink.getsockname()[1]
    loop = asyncio.get_running_loop()
    swallowed = 0

    def drain() -> None:
        nonlocal swallowed
        with contextlib.suppress(BlockingIOError):
            while True:
                sink.recv(2048)
                swallowed += 1

    loop.add_reader(sink.fileno(), drain)

    graph_server = await serve_asgi(bench.graph, graph_port)
    app_server = await serve_asgi(bench.app, app_port)
    tmp = tempfile.TemporaryDirectory(prefix="sb-bench-")
    parent, child = mp.Pipe()
    proc = mp.get_context("spawn").Process(
        target=server_main,
        args=(
            child,
            server_port,
            tmp.name,
            graph_url,
            bench.app_secret,
            args.server_log_level,
            args.profile,
            {"event_loop": args.event_loop, "http_parser": args.http_parser},
        ),
        name="switchboard",
        daemon=True,
    )
    proc.start()
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    try:
        server_runtime = await loop.run_in_executor(None, parent.recv)
        assert isinstance(server_runtime, dict), server_runtime
        assert proc.pid is not None
        bench.server_url = f"http://127.0.0.1:{server_port}"
        bench.api = httpx.AsyncClient(
            base_url=bench.server_url, headers={"Authorization": f"App {API_KEY}"}, timeout=30, limits=limits
        )
        bench.webhook_client = httpx.AsyncClient(timeout=30, limits=limits)
        response = await bench.api.post(
            "/calls/1/configurations", json={"id": CONFIGURATION_ID, "name": "bench"}
        )
        assert response.status_code < 300, response.text
        response = await bench.api.post(
            "/subscriptions/1/subscription/VOICE_VIDEO",
            json={
                "name": "bench events",
                "events": ["CALL_RECEIVED", "CALL_FINISHED", "CALL_FAILED"],
                "criteria": [{"callsConfigurationId": CONFIGURATION_ID}],
                "profile": {"webhook": {"notifyUrl": f"http://127.0.0.1:{app_port}/events"}},
            },
        )
        assert response.status_code < 300, response.text

        # warm-up: a few calls outside the measurement (first-request imports, connection pools, SQLite pages)
        for i in range(args.warmup):
            call = CallTimes(-1 - i, f"wacid.WARMUP{i:06d}", f"1999{i:07d}")
            bench.calls[call.call_id] = call
            bench.by_wa_id[call.wa_id] = call
            await bench.connect(call, ice_port)
            deadline = time.perf_counter() + 10
            while call.pre_accept is None and time.perf_counter() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        await asyncio.sleep(args.hold + 0.5)

        plan = [CallTimes(i, f"wacid.BENCH{i:08d}", f"1555{i:07d}") for i in range(total)]
        for call in plan:
            bench.calls[call.call_id] = call
            bench.by_wa_id[call.wa_id] = call
        cpu0, rss0 = proc_cpu_rss(proc.pid)
        threads0 = thread_cpu(proc.pid)
        self_cpu0 = time.process_time()
        load0 = os.getloadavg()
        t0 = time.perf_counter() + 0.1
        lateness: list[float] = []
        for i, call in enumerate(plan):
            due = t0 + i / args.rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            lateness.append(time.perf_counter() - due)
            bench.spawn(bench.connect(call, ice_port))
        send_end = time.perf_counter()
        deadline = send_end + args.settle
        while time.perf_counter() < deadline and any(c.pre_accept is None for c in plan):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        wall = time.perf_counter() - t0
        cpu1, rss1 = proc_cpu_rss(proc.pid)
        threads1 = thread_cpu(proc.pid)
        self_cpu = time.process_time() - self_cpu0
        load1 = os.getloadavg()
        # let the terminates go out before stopping
        deadline = time.perf_counter() + args.hold + 5
        while time.perf_counter() < deadline and any(c.pre_accept and not c.terminated for c in plan):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
    finally:
        parent.send("stop")
        await loop.run_in_executor(None, proc.join, 30)
        if proc.is_alive():
            print("the server did not stop within 30 s: killed", file=sys.stderr)
            proc.kill()
        for client in (bench.api, bench.webhook_client):
            if client is not None:
                await client.aclose()
        graph_server.should_exit = app_server.should_exit = True
        loop.remove_reader(sink.fileno())
        sink.close()
        tmp.cleanup()
        await asyncio.sleep(0.2)

    done = [c for c in plan if c.pre_accept is not None]
    latency = [c.pre_accept - c.sent for c in done if c.pre_accept is not None]
    to_event = [c.event - c.sent for c in done if c.event is not None]
    to_graph = [c.pre_accept - c.event for c in done if c.event is not None and c.pre_accept is not None]
    result = {
        "benchmark": "connect_latency",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "server_runtime": server_runtime,
        "load_average_before": [round(x, 2) for x in load0],
        "load_average_after": [round(x, 2) for x in load1],
        "rate_cps": args.rate,
        "duration_s": args.duration,
        "hold_s": args.hold,
        "calls": total,
        "pre_accepted": len(done),
        "terminated": sum(c.terminated for c in plan),
        "webhook_non_2xx": sum(1 for c in plan if c.webhook_status is None or c.webhook_status >= 300),
        "latency": summary(latency),
        "webhook_to_call_received": summary(to_event),
        "call_received_to_pre_accept": summary(to_graph),
        "send_lateness_ms_max": round(max(lateness) * 1000, 2),
        "server_cpu_percent_of_core": round((cpu1 - cpu0) / wall * 100, 1),
        "server_cpu_ms_per_call": round((cpu1 - cpu0) / max(1, total) * 1000, 2),
        "server_thread_cpu_percent": {
            name: round((cpu - threads0.get(name, 0.0)) / wall * 100, 1)
            for name, cpu in sorted(threads1.items(), key=lambda item: -item[1])
        },
        "server_rss_mb": [round(rss0 / 2**20, 1), round(rss1 / 2**20, 1)],
        "bench_cpu_percent_of_core": round(self_cpu / wall * 100, 1),
        "graph_actions": bench.graph_actions,
        "app_events": bench.events,
        "ice_checks_swallowed": swallowed,
        "duplicate_call_received": bench.duplicate_call_received,
        "duplicate_same_event_id": bench.duplicate_same_event_id,
        "errors": bench.errors[:10],
        "error_count": len(bench.errors),
    }
    return result


def print_table(result: dict[str, Any]) -> None:
    print(
        f"\nconnect → pre_accept  {result['rate_cps']} cps for {result['duration_s']} s = "
        f"{result['calls']} calls (hold {result['hold_s']} s)  {result['date']}  Python {result['python']}  "
        f"load avg {result['load_average_before']}  server on {result['server_runtime']}"
    )
    print(f"{'segment':34} {'n':>5} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for label, key in (
        ("webhook → pre_accept (measured)", "latency"),
        ("  webhook → CALL_RECEIVED at app", "webhook_to_call_received"),
        ("  CALL_RECEIVED → pre_accept", "call_received_to_pre_accept"),
    ):
        s = result[key]
        print(
            f"{label:34} {s['count']:>5} {s['p50_ms']:>8} {s['p90_ms']:>8} {s['p99_ms']:>8} {s['max_ms']:>8}"
        )
    print(
        f"pre-accepted {result['pre_accepted']}/{result['calls']}, terminated {result['terminated']}, "
        f"webhook non-2xx {result['webhook_non_2xx']}, errors {result['error_count']}, "
        f"duplicate CALL_RECEIVED {result['duplicate_call_received']} "
        f"(same X-Event-Id {result['duplicate_same_event_id']})\n"
        f"server CPU {result['server_cpu_percent_of_core']} % of a core "
        f"({result['server_cpu_ms_per_call']} ms per call), RSS {result['server_rss_mb']} MB; "
        f"server threads (% of a core): {result['server_thread_cpu_percent']}\n"
        f"bench CPU {result['bench_cpu_percent_of_core']} %; "
        f"max send lateness {result['send_lateness_ms_max']} ms"
    )
    p99 = result["latency"]["p99_ms"]
    print(f"target p99 ≤ 100 ms: {'PASS' if p99 <= 100 else 'FAIL'} (p99 {p99} ms)")
    if result["errors"]:
        print("first errors:", *result["errors"][:3], sep="\n  ")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=20.0, help="new calls per second (default 20)")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of load (default 15)")
    parser.add_argument(
        "--hold", type=float, default=2.0, help="seconds from pre_accept to terminate (default 2)"
    )
    parser.add_argument("--warmup", type=int, default=3, help="calls before the measured window (default 3)")
    parser.add_argument("--settle", type=float, default=15.0, help="max seconds to wait for stragglers")
    parser.add_argument(
        "--profile", help="write a cProfile of the server process here (slows the server: not for figures)"
    )
    parser.add_argument("--server-log-level", default="WARNING", help="the server process's log level")
    parser.add_argument(
        "--event-loop",
        choices=["auto", "uvloop", "asyncio"],
        default="auto",
        help="the server's event loop (default auto: uvloop where installed, as `switchboard serve`)",
    )
    parser.add_argument(
        "--http-parser",
        choices=["auto", "httptools", "h11"],
        default="auto",
        help="the server's HTTP parser (default auto: httptools where installed)",
    )
    parser.add_argument(
        "--out", type=Path, help="result JSON (default bench/results/connect_latency-<time>.json)"
    )
    args = parser.parse_args()
    result = asyncio.run(run(args))
    print_table(result)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = args.out or RESULTS / f"connect_latency-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    sys.exit(0)


if __name__ == "__main__":
    main()
