"""SIP ⇄ WhatsApp calls through call routing: call-setup CPU per call, and bridged calls per core, transcoded
(PCMU trunk: G.711 ⇄ Opus) and passed through (OPUS trunk).

Processes:
  * server (measured): a real `switchboard.server.Server` (SQLite, embedded media engine, a `[sip]` UDP
    listener, one WhatsApp sender whose Graph API is the emulator), started as `sip_calls.py` starts it.
    Its CPU (all threads) is read from /proc/<pid>.
  * the Meta emulator (`switchboard.emulator`), its own process: the Graph API, signed webhooks and the
    WhatsApp users, real aiortc WebRTC peers that answer at once and send a 600 Hz tone. Not measured
    (its CPU is reported, as it shares the machine).
  * sipp (Debian `sip-tester`), the PBX calling in: one UDP port per trunk.
  * this process: sets the server up over its HTTP API and runs sipp.

Set-up: trunks `pcmu` and `opus` (STATIC, `sourceHosts` = the caller's two ports, codecs PCMU and OPUS); one
route per trunk: SIP criterion `sipTrunkId` → ENDPOINT WHATSAPP `{from: the sender}` (the user is the
INVITE's Request-URI user). Every call is
  sipp → INVITE → server (trunk, call routing) → Graph `connect` (SDP offer) → the user rings and answers
  (connect webhook, ICE + DTLS-SRTP) → 200 OK to sipp … BYE from sipp → Graph `terminate`.
Every call dials a different user (Meta allows 100 connected calls a day per user; each has a permanent
call permission), read by sipp from an injection file.

Phase `setup` (PCMU trunk, no audio from sipp): `--calls` calls at `--rate` calls per second, each held
`--hold-ms`; server CPU over the run less idle CPU / completed calls = CPU per set-up (and tear-down).
Phase `rtp`: `--concurrent` calls up at once on each trunk, sipp streaming a 1 kHz tone (PCMU by
`rtp_stream`; Opus by `play_pcap_audio` of a generated pcap, as `rtp_stream` plays G.711 only), the users
sending their tone back; server CPU over a `--window` once all calls are up, less idle, / calls.

Run: .venv/bin/python bench/sip_whatsapp.py [--rate 10,20] [--calls 100] [--concurrent 10,20] [--window 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import secrets
import socket
import struct
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from sip_calls import (
    API_KEY,
    RESULTS,
    idle_cpu,
    loadavg,
    pcmu_tone,
    proc_cpu_rss,
    run_sipp,
    server_main,
    sipp_common,
    udp_arrivals,
)
from sip_calls import free_port as free_tcp_port

PHONE_NUMBER_ID = "100200300"
DISPLAY_NUMBER = "15550100200"
WABA_ID = "900800700"
ACCESS_TOKEN = "bench-access-token"
OPUS_PT = 111

UAC = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="a PBX calls a WhatsApp user">
  <send retrans="500">
    <![CDATA[

      INVITE sip:[field0]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: pbx <sip:15550009999@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[field0]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:15550009999@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio {media_port} RTP/AVP {pt}
      a=rtpmap:{pt} {rtpmap}

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true"/>
  <send>
    <![CDATA[

      ACK sip:[field0]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: pbx <sip:15550009999@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[field0]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  {media}
  <pause milliseconds="{hold_ms}"/>
  <send retrans="500">
    <![CDATA[

      BYE sip:[field0]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: pbx <sip:15550009999@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[field0]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
</scenario>
"""


def scenario(codec: str, hold_ms: int, media: Path | None) -> str:
    """The UAC scenario for a trunk's codec; `media` is the tone sipp sends (none: silent caller)."""
    if codec == "PCMU":
        fields = {"pt": "0", "rtpmap": "PCMU/8000", "media_port": "[auto_media_port]"}
        action = f'<exec rtp_stream="{media},-1,0"/>'
    else:
        fields = {"pt": str(OPUS_PT), "rtpmap": "opus/48000/2", "media_port": "[media_port]"}
        action = f'<exec play_pcap_audio="{media}"/>'
    text = UAC.replace("{media}", f"<nop><action>{action}</action></nop>" if media else "")
    for key, value in {**fields, "hold_ms": str(hold_ms)}.items():
        text = text.replace("{" + key + "}", value)
    return text


def opus_pcap(path: Path, seconds: float) -> Path:
    """A pcap of one RTP stream of 20 ms Opus frames of a 1 kHz tone (what `play_pcap_audio` replays)."""
    from switchboard.media.codecs import Codec, encoder_for

    encoder = encoder_for(Codec.OPUS)
    t = np.arange(960) / 48000
    records = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for i in range(int(seconds * 50)):
        pcm = (0.3 * 32767 * np.sin(2 * np.pi * 1000 * (t + i * 0.02))).astype(np.int16)
        payload = encoder.encode_frame(pcm)
        rtp = struct.pack("!BBHII", 0x80, OPUS_PT, i & 0xFFFF, (i * 960) & 0xFFFFFFFF, 0x5EED) + payload
        udp = struct.pack("!HHHH", 6000, 6000, 8 + len(rtp), 0) + rtp
        loopback = bytes([127, 0, 0, 1])
        ip = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i & 0xFFFF, 0, 64, 17, 0, loopback, loopback
        )
        frame = bytes(12) + b"\x08\x00" + ip + udp
        micros = i * 20_000
        records.append(struct.pack("<IIII", micros // 1_000_000, micros % 1_000_000, len(frame), len(frame)))
        records.append(frame)
    path.write_bytes(b"".join(records))
    return path


def free_udp_port() -> int:
    return free_tcp_port(socket.SOCK_DGRAM)


# --- the emulator process ----------------------------------------------------------------------------------


def emulator_main(conn: Any, webhook_url: str, app_secret: str, wa_ids: list[str], recordings: str) -> None:
    """Child process: the Meta emulator, every user in `wa_ids` permitted and answering at once."""
    import logging

    from switchboard.emulator import MetaEmulator

    logging.basicConfig(level="WARNING", format="emulator %(asctime)s %(levelname)s %(name)s: %(message)s")

    async def run() -> None:
        emulator = MetaEmulator(webhook_url, recording_dir=recordings, webhook_retry_delays=(0.2, 0.5, 1.0))
        emulator.add_business_number(PHONE_NUMBER_ID, DISPLAY_NUMBER, WABA_ID, ACCESS_TOKEN, app_secret)
        for wa_id in wa_ids:
            user = emulator.user(wa_id)
            user.answer.delay = 0.0
            user.auto_tone = 600.0
            emulator.permission(user, PHONE_NUMBER_ID).grant(permanent=True)
        async with emulator:
            conn.send(emulator.graph_url)
            await asyncio.get_running_loop().run_in_executor(None, conn.recv)

    asyncio.run(run())


def server_extra(graph_url: str, app_secret: str) -> dict[str, Any]:
    sender = {
        "phone_number_id": PHONE_NUMBER_ID,
        "display_phone_number": DISPLAY_NUMBER,
        "waba_id": WABA_ID,
        "access_token": ACCESS_TOKEN,
        "app_secret": app_secret,
        "verify_token": "bench-verify",
        "graph_api_url": graph_url,
        "inbound": {"action": "CALL_ROUTING"},
    }
    return {
        "server": {"allow_private_urls": True, "media_remote_networks": ["127.0.0.0/8"]},
        "whatsapp": {"graph_retries": 2, "graph_timeout_s": 10.0, "senders": [sender]},
    }


async def learn_permissions(api: httpx.AsyncClient, wa_ids: list[str]) -> None:
    """Have the server read each user's permanent call permission from Meta (the Graph API's
    `call_permissions`), as it does when asked through its API; it then admits calls to them."""
    for start in range(0, len(wa_ids), 20):
        replies = await asyncio.gather(
            *(
                api.get(f"/whatsapp/1/senders/{DISPLAY_NUMBER}/calls/{wa_id}/permissions")
                for wa_id in wa_ids[start : start + 20]
            )
        )
        for reply in replies:
            reply.raise_for_status()
            assert reply.json()["status"] == "PERMANENT", reply.text


async def configure(api: httpx.AsyncClient, callers: dict[str, int]) -> None:
    """A trunk per codec whose source is that caller's port, and a route from it to WhatsApp."""
    for codec, port in callers.items():
        trunk = await api.post(
            "/calls/1/sip-trunks",
            json={
                "type": "STATIC",
                "name": f"pbx {codec}",
                "sourceHosts": [f"127.0.0.1:{port}"],
                "channelLimit": 1000,
                "billingPackage": {"packageType": "METERED"},
                "codecs": [codec],
            },
        )
        trunk.raise_for_status()
        route = await api.post(
            "/callrouting/1/routes",
            json={
                "name": f"pbx {codec} to whatsapp",
                "criteria": [{"value": {"type": "SIP", "sipTrunkId": trunk.json()["id"]}}],
                "destinations": [{"type": "ENDPOINT", "value": {"type": "WHATSAPP", "from": DISPLAY_NUMBER}}],
            },
        )
        route.raise_for_status()


# --- the phases --------------------------------------------------------------------------------------------


class Users:
    """The WhatsApp users still to be dialled, handed out as sipp injection files."""

    def __init__(self, count: int, work: Path) -> None:
        self.ids = [f"1555{7000000 + i}" for i in range(count)]
        self._next = 0
        self._work = work

    def take(self, count: int) -> Path:
        ids = self.ids[self._next : self._next + count]
        assert len(ids) == count, "not enough users: raise the count in run()"
        path = self._work / f"users-{self._next}.csv"
        path.write_text("SEQUENTIAL\n" + "".join(f"{wa_id};\n" for wa_id in ids))
        self._next += count
        return path


def uac_args(script: Path, users: Path, rate: float, calls: int, port: int, target: str) -> list[str]:
    args = ["-sf", str(script), "-inf", str(users), "-r", str(rate), "-m", str(calls), "-l", str(calls)]
    return [*args, *sipp_common(port, free_udp_port()), target]


async def setup_phase(
    pids: dict[str, int], call: dict[str, Any], users: Users, rate: float, calls: int, idle: float
) -> dict[str, Any]:
    work: Path = call["work"]
    script = work / f"setup-{rate}.xml"
    script.write_text(scenario("PCMU", call["hold_ms"], None))
    args = uac_args(script, users.take(calls), rate, calls, call["ports"]["PCMU"], call["target"])
    load0 = loadavg()
    cpu0 = {name: proc_cpu_rss(pid)[0] for name, pid in pids.items()}
    t0 = time.perf_counter()
    counts = await run_sipp(args, work, limit_s=calls / rate + 90)
    wall = time.perf_counter() - t0
    cpu = {name: proc_cpu_rss(pid)[0] - cpu0[name] for name, pid in pids.items()}
    done = int(counts.get("SuccessfulCall(C)", 0))
    server = cpu["server"] - idle * wall
    return {
        "phase": "setup",
        "codec": "PCMU",
        "rate_cps": rate,
        "calls": calls,
        "hold_ms": call["hold_ms"],
        "sipp": counts,
        "wall_s": round(wall, 2),
        "server_cpu_s": round(server, 3),
        "server_cpu_ms_per_call": round(1000 * server / done, 2) if done else None,
        "setups_per_core_s": round(done / server, 1) if server > 0 else None,
        "server_cpu_fraction": round(server / wall + idle, 3),
        "server_idle_cpu_fraction": round(idle, 4),
        "emulator_cpu_fraction": round(cpu["emulator"] / wall, 3),
        "server_rss_mb": round(proc_cpu_rss(pids["server"])[1] / 2**20, 1),
        "loadavg_before": load0,
        "loadavg_after": loadavg(),
    }


async def rtp_phase(
    pids: dict[str, int], call: dict[str, Any], users: Users, codec: str, concurrent: int, idle: float
) -> dict[str, Any]:
    work: Path = call["work"]
    window: float = call["window"]
    ramp_rate = call["ramp_rate"]
    ramp_s = concurrent / ramp_rate + 4
    hold_ms = int((ramp_s + window + 3) * 1000)
    media = call["tone"] if codec == "PCMU" else opus_pcap(work / "tone.pcap", hold_ms / 1000 + 2)
    script = work / f"rtp-{codec}-{concurrent}.xml"
    script.write_text(scenario(codec, hold_ms, media))
    args = uac_args(
        script, users.take(concurrent), ramp_rate, concurrent, call["ports"][codec], call["target"]
    )
    caller = asyncio.create_task(run_sipp(args, work, limit_s=hold_ms / 1000 + 90))
    await asyncio.sleep(ramp_s)
    load0 = loadavg()
    cpu0 = {name: proc_cpu_rss(pid)[0] for name, pid in pids.items()}
    udp0 = udp_arrivals()
    t0 = time.perf_counter()
    await asyncio.sleep(window)
    wall = time.perf_counter() - t0
    cpu = {name: (proc_cpu_rss(pid)[0] - cpu0[name]) / wall for name, pid in pids.items()}
    udp_rate = (udp_arrivals() - udp0) / wall
    load1, rss = loadavg(), proc_cpu_rss(pids["server"])[1]
    counts = await caller
    fraction = cpu["server"] - idle
    return {
        "phase": "rtp",
        "codec": codec,
        "media": "transcoded Opus ⇄ PCMU" if codec == "PCMU" else "forwarded Opus (pass-through)",
        "concurrent_calls": concurrent,
        "window_s": round(wall, 2),
        "sipp": counts,
        "server_cpu_fraction": round(fraction, 3),
        "server_idle_cpu_fraction": round(idle, 4),
        "server_cpu_percent_per_call": round(100 * fraction / concurrent, 3),
        "bridged_calls_per_core": round(concurrent / fraction, 1) if fraction > 0 else None,
        "emulator_cpu_fraction": round(cpu["emulator"], 3),
        "udp_datagrams_per_s": round(udp_rate),
        "udp_datagrams_expected_per_s": 200 * concurrent,
        "server_rss_mb": round(rss / 2**20, 1),
        "loadavg_before": load0,
        "loadavg_after": load1,
    }


async def phases(
    args: argparse.Namespace, pids: dict[str, int], call: dict[str, Any], users: Users
) -> list[Any]:
    warm = {**call, "hold_ms": 500}
    await setup_phase(pids, warm, users, 3, 3, 0.0)
    idle = await idle_cpu(pids["server"])
    results: list[dict[str, Any]] = []
    for rate in args.rate:
        results.append(await setup_phase(pids, call, users, rate, args.calls, idle))
        print_row(results[-1])
    for codec in args.codecs:
        for concurrent in args.concurrent:
            results.append(await rtp_phase(pids, call, users, codec, concurrent, idle))
            print_row(results[-1])
    return results


async def run(args: argparse.Namespace) -> dict[str, Any]:
    http_port, sip_port = free_tcp_port(), free_udp_port()
    ports = {"PCMU": free_udp_port(), "OPUS": free_udp_port()}
    app_secret = secrets.token_hex(16)
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="sip-wa-bench-") as tmp:
        work = Path(tmp)
        users = Users(3 + len(args.rate) * args.calls + len(args.codecs) * sum(args.concurrent), work)
        emulator_conn, emulator_child = ctx.Pipe()
        webhook_url = f"http://127.0.0.1:{http_port}/webhooks/whatsapp"
        emulator = ctx.Process(
            target=emulator_main,
            args=(emulator_child, webhook_url, app_secret, users.ids, str(work / "heard")),
        )
        emulator.start()
        server_conn, server_child = ctx.Pipe()
        try:
            loop = asyncio.get_running_loop()
            graph_url = await loop.run_in_executor(None, emulator_conn.recv)
            extra = server_extra(graph_url, app_secret)
            server = ctx.Process(
                target=server_main,
                args=(server_child, http_port, sip_port, str(work / "data"), args.profile, extra),
            )
            server.start()
            try:
                runtime_info = await loop.run_in_executor(None, server_conn.recv)
                assert server.pid is not None and emulator.pid is not None
                headers = {"Authorization": f"App {API_KEY}"}
                async with httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{http_port}", headers=headers
                ) as api:
                    await configure(api, ports)
                    await learn_permissions(api, users.ids)
                call = {
                    "work": work,
                    "ports": ports,
                    "target": f"127.0.0.1:{sip_port}",
                    "hold_ms": args.hold_ms,
                    "window": args.window,
                    "ramp_rate": args.ramp_rate,
                    "tone": pcmu_tone(work / "tone.ul"),
                }
                pids = {"server": server.pid, "emulator": emulator.pid}
                results = await phases(args, pids, call, users)
            finally:
                server_conn.send("stop")
                server.join(30)
        finally:
            emulator_conn.send("stop")
            emulator.join(30)
    return {
        "bench": "sip_whatsapp",
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
            f"emulator {result['emulator_cpu_fraction']}  load {result['loadavg_after']}",
            flush=True,
        )
    else:
        print(
            f"rtp {result['codec']:>4} {result['concurrent_calls']:>4} calls  {result['sipp']}  cpu "
            f"{result['server_cpu_fraction']:.2f}  %/call {result['server_cpu_percent_per_call']}  "
            f"calls/core {result['bridged_calls_per_core']}  udp/s {result['udp_datagrams_per_s']}"
            f"/{result['udp_datagrams_expected_per_s']}  emulator {result['emulator_cpu_fraction']}  "
            f"load {result['loadavg_after']}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )

    def numbers(text: str) -> list[int]:
        return [int(part) for part in text.split(",") if part]

    def codecs(text: str) -> list[str]:
        return [part.upper() for part in text.split(",") if part]

    parser.add_argument("--rate", type=numbers, default=[10, 20], help="calls per second, comma-separated")
    parser.add_argument("--calls", type=int, default=100, help="calls per setup run")
    parser.add_argument("--hold-ms", type=int, default=1000, help="how long each setup-phase call lasts")
    parser.add_argument(
        "--codecs", type=codecs, default=["PCMU", "OPUS"], help="trunk codecs of the rtp phase"
    )
    parser.add_argument("--concurrent", type=numbers, default=[10, 20], help="bridged calls, comma-separated")
    parser.add_argument(
        "--ramp-rate", type=float, default=10.0, help="calls per second to set up the rtp phase"
    )
    parser.add_argument("--window", type=float, default=8.0, help="seconds measured in the rtp phase")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--profile", default=None, help="write the server's cProfile statistics here")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    RESULTS.mkdir(exist_ok=True)
    out = args.out or RESULTS / f"sip_whatsapp-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
