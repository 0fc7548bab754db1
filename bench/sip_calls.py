"""SIP calls through the SIP channel: call-setup CPU per call, and bridged SIP ⇄ SIP RTP calls per core.

Processes:
  * server (measured): a real `switchboard.server.Server` (SQLite in a temp dir, embedded media engine,
    `[sip] listen = udp:127.0.0.1:P`) in its own process (`multiprocessing`, spawn), on the runtime
    `switchboard serve` uses. Its CPU (all threads) and RSS are read from /proc/<pid>.
  * two sipp processes (Debian `sip-tester`): the caller (UAC) and the called PBX (UAS, `-rtp_echo`).
  * this process: sets the server up over its HTTP API and starts the sipp runs.

Set-up: trunk A (STATIC, `sourceHosts` = the UAC) and trunk B (STATIC, `destinationHosts` = the UAS), both
PCMU; one route: calls arriving on trunk A → ENDPOINT SIP on trunk B. Every call is thus
  UAC → INVITE → server (trunk A, call routing) → INVITE → UAS, answered, bridged in media (PCMU ⇄ PCMU,
  forwarded), BYE from the UAC, BYE on to the UAS.

Phase `setup`: the UAC places `--calls` calls at `--rate` calls per second, each held `--hold-ms`; the
server's CPU over the run / completed calls = CPU per call set-up (and tear-down, routing, both legs).
Phase `rtp`: the UAC keeps `--concurrent` calls up, each streaming PCMU (20 ms packets, `rtp_stream`) that
the UAS echoes back; the server's CPU over a `--window` once all calls are up, less its idle CPU, / the calls
= CPU per bridged call (signalling is quiet by then: the calls only stream).
The system's UDP datagram counter (/proc/net/snmp) over the window is compared with the 200 packets per second
per call that four forwarded streams make (UAC → A, B → UAS, UAS → B, A → UAC).

Run: .venv/bin/python bench/sip_calls.py [--rate 10,25,40] [--calls 200] [--concurrent 25,50,100]
     [--window 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import platform
import shutil
import socket
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
API_KEY = "bench-api-key-0123456789abcdef"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

RTP_UAC = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="a call that streams PCMU until BYE">
  <send retrans="500">
    <![CDATA[

      INVITE sip:bob@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:alice@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:bob@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:alice@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [auto_media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true"/>
  <send>
    <![CDATA[

      ACK sip:bob@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:alice@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:bob@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <nop><action><exec rtp_stream="{audio},-1,0"/></action></nop>
  <pause milliseconds="{hold_ms}"/>
  <nop><action><exec rtp_stream="pause"/></action></nop>
  <send retrans="500">
    <![CDATA[

      BYE sip:bob@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:alice@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:bob@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
</scenario>
"""


# --- the server process ------------------------------------------------------------------------------------


def server_main(
    conn: Any,
    port: int,
    sip_port: int,
    data_dir: str,
    profile: str | None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Child process: run a real Server with a SIP listener until the parent sends anything on `conn`
    (under cProfile, its statistics written to `profile`, if asked); `extra` adds settings sections and
    `server` keys."""
    import logging

    from switchboard import runtime
    from switchboard.config import load_settings
    from switchboard.server import Server

    logging.basicConfig(level="WARNING", format="server %(asctime)s %(levelname)s %(name)s: %(message)s")
    extra = dict(extra or {})
    server = {"host": "127.0.0.1", "port": port, "data_dir": data_dir, **extra.pop("server", {})}
    settings = load_settings(
        overrides={
            "server": server,
            "api": {"keys": [API_KEY]},
            "sip": {"listen": [f"udp:127.0.0.1:{sip_port}"], "rtp_ports": [32000, 39999]},
            **extra,
        },
        environ={},
    )

    async def run() -> None:
        async with Server(settings):
            loop = asyncio.get_running_loop()
            conn.send({"event_loop": f"{type(loop).__module__}.{type(loop).__name__}"})
            await loop.run_in_executor(None, conn.recv)

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
    return (int(fields[11]) + int(fields[12])) / CLK_TCK, int(fields[21]) * PAGE


def udp_arrivals() -> int:
    """UDP datagrams that reached a socket of this machine, read or dropped at a full receive buffer (the
    caller's sipp never reads the audio sent back to it)."""
    text = Path("/proc/net/snmp").read_text()
    lines = [line.split() for line in text.splitlines() if line.startswith("Udp:")]
    header, values = lines[0], lines[1]
    return int(values[header.index("InDatagrams")]) + int(values[header.index("RcvbufErrors")])


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().strip()


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def pcmu_tone(path: Path, seconds: float = 2.0) -> Path:
    """A raw G.711 µ-law file of a 1 kHz tone (what `rtp_stream` plays)."""
    from switchboard.media.g711 import ulaw_encode

    t = np.arange(int(8000 * seconds)) / 8000
    pcm = (0.3 * 32767 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    path.write_bytes(ulaw_encode(pcm))
    return path


# --- sipp --------------------------------------------------------------------------------------------------


def sipp_common(port: int, media_port: int) -> list[str]:
    return ["-i", "127.0.0.1", "-p", str(port), "-mp", str(media_port), "-t", "u1", "-nostdin"]


async def run_sipp(args: list[str], cwd: Path, limit_s: float) -> dict[str, Any]:
    """Run a sipp UAC to its end; its exit code and the final counts from its statistics file."""
    sipp = shutil.which("sipp")
    assert sipp is not None, "needs sipp (Debian sip-tester)"
    stats = cwd / f"stats-{time.monotonic_ns()}.csv"
    process = await asyncio.create_subprocess_exec(
        sipp, *args, "-trace_stat", "-stf", str(stats), "-fd", "1",
        cwd=cwd, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        code = await asyncio.wait_for(process.wait(), limit_s)
    except TimeoutError:
        process.kill()
        code = await process.wait()
    rows = [line.split(";") for line in stats.read_text().splitlines()] if stats.exists() else []
    counts: dict[str, Any] = {"exit_code": code}
    if len(rows) >= 2:
        header, last = rows[0], rows[-1]
        for name in ("SuccessfulCall(C)", "FailedCall(C)", "TotalCallCreated"):
            if name in header:
                counts[name] = int(last[header.index(name)])
    return counts


@contextlib.asynccontextmanager
async def sipp_uas(port: int, media_port: int, cwd: Path) -> Any:
    sipp = shutil.which("sipp")
    assert sipp is not None, "needs sipp (Debian sip-tester)"
    args = ["-sn", "uas", "-rtp_echo", *sipp_common(port, media_port)]
    process = await asyncio.create_subprocess_exec(
        sipp, *args, cwd=cwd, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()


# --- set-up over the API -----------------------------------------------------------------------------------


async def configure(api: httpx.AsyncClient, uac_port: int, uas_port: int) -> None:
    common = {"channelLimit": 1000, "billingPackage": {"packageType": "METERED"}, "codecs": ["PCMU"]}
    inbound = await api.post(
        "/calls/1/sip-trunks",
        json={"type": "STATIC", "name": "caller", "sourceHosts": [f"127.0.0.1:{uac_port}"], **common},
    )
    outbound = await api.post(
        "/calls/1/sip-trunks",
        json={"type": "STATIC", "name": "pbx", "destinationHosts": [f"127.0.0.1:{uas_port}"], **common},
    )
    for response in (inbound, outbound):
        response.raise_for_status()
    route = await api.post(
        "/callrouting/1/routes",
        json={
            "name": "caller to pbx",
            "criteria": [{"value": {"type": "SIP", "sipTrunkId": inbound.json()["id"]}}],
            "destinations": [
                {
                    "type": "ENDPOINT",
                    "value": {"type": "SIP", "sipTrunkId": outbound.json()["id"], "username": "bob"},
                }
            ],
        },
    )
    route.raise_for_status()


# --- the phases --------------------------------------------------------------------------------------------


async def idle_cpu(pid: int, seconds: float = 5.0) -> float:
    """The server's CPU fraction with no call (its timers, the node heartbeat), subtracted below."""
    cpu0, _ = proc_cpu_rss(pid)
    t0 = time.perf_counter()
    await asyncio.sleep(seconds)
    cpu1, _ = proc_cpu_rss(pid)
    return (cpu1 - cpu0) / (time.perf_counter() - t0)


async def setup_phase(
    pid: int, target: str, uac_port: int, work: Path, rate: float, calls: int, hold_ms: int, idle: float
) -> dict[str, Any]:
    args = ["-sn", "uac", "-d", str(hold_ms), "-r", str(rate), "-m", str(calls), "-l", str(calls)]
    args += [*sipp_common(uac_port, free_port(socket.SOCK_DGRAM)), target]
    load0 = loadavg()
    cpu0, rss0 = proc_cpu_rss(pid)
    t0 = time.perf_counter()
    counts = await run_sipp(args, work, limit_s=calls / rate + 60)
    wall = time.perf_counter() - t0
    cpu1, rss1 = proc_cpu_rss(pid)
    done = int(counts.get("SuccessfulCall(C)", 0))
    cpu = cpu1 - cpu0 - idle * wall
    return {
        "phase": "setup",
        "rate_cps": rate,
        "calls": calls,
        "hold_ms": hold_ms,
        "sipp": counts,
        "wall_s": round(wall, 2),
        "server_cpu_s": round(cpu, 3),
        "server_cpu_ms_per_call": round(1000 * cpu / done, 2) if done else None,
        "setups_per_core_s": round(done / cpu, 1) if cpu else None,
        "server_cpu_fraction": round(cpu / wall + idle, 3),
        "server_idle_cpu_fraction": round(idle, 4),
        "server_rss_mb": round(rss1 / 2**20, 1),
        "server_rss_growth_mb": round((rss1 - rss0) / 2**20, 1),
        "loadavg_before": load0,
        "loadavg_after": loadavg(),
    }


async def rtp_phase(
    pid: int, target: str, uac_port: int, work: Path, concurrent: int, window: float, audio: Path, idle: float
) -> dict[str, Any]:
    ramp_s = concurrent / 20 + 3
    hold_ms = int((ramp_s + window + 3) * 1000)
    scenario = work / f"rtp_uac_{concurrent}.xml"
    scenario.write_text(RTP_UAC.replace("{audio}", str(audio)).replace("{hold_ms}", str(hold_ms)))
    args = ["-sf", str(scenario), "-r", "20", "-m", str(concurrent), "-l", str(concurrent)]
    args += [*sipp_common(uac_port, free_port(socket.SOCK_DGRAM)), target]
    caller = asyncio.create_task(run_sipp(args, work, limit_s=hold_ms / 1000 + 60))
    await asyncio.sleep(ramp_s)  # every call up (20 per second) before the window
    load0 = loadavg()
    cpu0, rss = proc_cpu_rss(pid)
    udp0 = udp_arrivals()
    t0 = time.perf_counter()
    await asyncio.sleep(window)
    wall = time.perf_counter() - t0
    cpu1, rss = proc_cpu_rss(pid)
    udp_rate = (udp_arrivals() - udp0) / wall
    load1 = loadavg()
    counts = await caller
    fraction = (cpu1 - cpu0) / wall - idle
    return {
        "phase": "rtp",
        "concurrent_calls": concurrent,
        "window_s": round(wall, 2),
        "sipp": counts,
        "server_cpu_fraction": round(fraction, 3),
        "server_idle_cpu_fraction": round(idle, 4),
        "server_cpu_percent_per_call": round(100 * fraction / concurrent, 3),
        "bridged_calls_per_core": round(concurrent / fraction, 1) if fraction else None,
        "udp_datagrams_per_s": round(udp_rate),
        "udp_datagrams_expected_per_s": 200 * concurrent,
        "server_rss_mb": round(rss / 2**20, 1),
        "loadavg_before": load0,
        "loadavg_after": load1,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    http_port, sip_port = free_port(), free_port(socket.SOCK_DGRAM)
    uac_port, uas_port = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    with tempfile.TemporaryDirectory(prefix="sip-bench-") as tmp:
        work = Path(tmp)
        server = ctx.Process(
            target=server_main, args=(child, http_port, sip_port, str(work / "data"), args.profile)
        )
        server.start()
        try:
            runtime_info = await asyncio.get_running_loop().run_in_executor(None, parent.recv)
            assert server.pid is not None
            target = f"127.0.0.1:{sip_port}"
            headers = {"Authorization": f"App {API_KEY}"}
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}", headers=headers) as api:
                await configure(api, uac_port, uas_port)
            results: list[dict[str, Any]] = []
            async with sipp_uas(uas_port, free_port(socket.SOCK_DGRAM), work):
                await setup_phase(server.pid, target, uac_port, work, 5, 5, 100, 0.0)  # warm-up
                idle = await idle_cpu(server.pid)
                for rate in args.rate:
                    result = await setup_phase(
                        server.pid, target, uac_port, work, rate, args.calls, args.hold_ms, idle
                    )
                    print_row(result)
                    results.append(result)
                audio = pcmu_tone(work / "tone.ul")
                for concurrent in args.concurrent:
                    result = await rtp_phase(
                        server.pid, target, uac_port, work, concurrent, args.window, audio, idle
                    )
                    print_row(result)
                    results.append(result)
        finally:
            parent.send("stop")
            server.join(30)
    return {
        "bench": "sip_calls",
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "server_runtime": runtime_info,
        "results": results,
    }


def print_row(result: dict[str, Any]) -> None:
    if result["phase"] == "setup":
        print(
            f"setup  {result['rate_cps']:>5} cps  {result['sipp']}  cpu/call "
            f"{result['server_cpu_ms_per_call']} ms  setups/core·s {result['setups_per_core_s']}  "
            f"load {result['loadavg_after']}",
            flush=True,
        )
    else:
        print(
            f"rtp    {result['concurrent_calls']:>5} calls  {result['sipp']}  cpu "
            f"{result['server_cpu_fraction']:.2f}  %/call {result['server_cpu_percent_per_call']}  "
            f"calls/core {result['bridged_calls_per_core']}  udp/s {result['udp_datagrams_per_s']}"
            f"/{result['udp_datagrams_expected_per_s']}  load {result['loadavg_after']}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )

    def numbers(text: str) -> list[int]:
        return [int(part) for part in text.split(",") if part]

    parser.add_argument(
        "--rate", type=numbers, default=[10, 25, 40], help="calls per second, comma-separated"
    )
    parser.add_argument("--calls", type=int, default=200, help="calls per setup run")
    parser.add_argument("--hold-ms", type=int, default=1000, help="how long each setup-phase call lasts")
    parser.add_argument(
        "--concurrent", type=numbers, default=[25, 50, 100], help="bridged RTP calls, comma-separated"
    )
    parser.add_argument("--window", type=float, default=10.0, help="seconds measured in the rtp phase")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--profile", default=None, help="write the server's cProfile statistics here")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    RESULTS.mkdir(exist_ok=True)
    out = args.out or RESULTS / f"sip_calls-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
