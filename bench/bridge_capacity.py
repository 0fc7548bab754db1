"""Bridge capacity: CPU of the embedded media engine relaying N bridged two-leg calls.

Modes (`--mode`): `opus` (both legs WhatsApp-like Opus over ICE + DTLS-SRTP, forwarded without decoding),
`transcode` (an Opus WhatsApp-like leg bridged to a plain RTP PCMU leg: decode, resample, encode both ways)
and `rtp` (two plain RTP PCMU legs, forwarded). `--loop uvloop` runs both processes on uvloop.

Processes, fresh for every N (the driver, this process, only relays SDP and sleeps):
  * A (measured): an `EmbeddedMediaEngine` that answers 2N legs and bridges them in pairs (leg 2k ↔ 2k+1),
    exactly as the platform bridges two calls: ICE-lite answerer, DTLS-SRTP, Opus forwarded without decoding.
  * B (load): another `EmbeddedMediaEngine` whose 2N legs are the two callers of each bridged call. Each leg
    offers, connects (ICE + DTLS to A) and plays a looped 1 s tone with real Opus frames (encoded once by the
    engine's frame cache, sent from its one 20 ms ticker): side 1 at 440 Hz, side 2 at 1000 Hz; the
    audio-check calls get their own pair of frequencies so a cross-connected bridge would show.

After every leg of B reports `MediaStarted`, A waits `--settle` seconds, then measures a window of `--window`
seconds: CPU time of A (`time.process_time()`, all threads) / wall time, RTP packets A received and sent
(from the legs' counters) against 50 packets/s per leg, the ticker's overruns, and RSS (/proc/self/statm)
against the RSS just after the engine started (before any leg). B measures its own CPU over the same window.

Audio check: for `--check` calls per N (first, middle, last), B records on both of the call's legs (the
engine's `start_recording`, WAV) for `--record` seconds inside the window. A recording of an engine leg
mixes what the leg receives with what it sends, so each file holds the caller's own tone and, if the bridge
works, the other caller's tone at about the same level. The check passes when the other caller's frequency
holds ≥ 25 % of the energy (`switchboard.media.tones.tone_power_ratio`) and no other checked call's frequency
holds more than 2 %. Recording decodes Opus on those legs of B only; A never decodes.

Run: .venv/bin/python bench/bridge_capacity.py [--mode opus|transcode|rtp] [--loop asyncio|uvloop]
     [--calls 10,30,60,100,150] [--window 15]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
PAGE = os.sysconf("SC_PAGE_SIZE")
SIDE_FREQS = (440.0, 1000.0)
TONE_MS = 1000
"""Looped tone length; 1 s holds a whole number of periods of every frequency used, so loops are seamless."""


def leg_specs(mode: str) -> tuple[Any, Any]:
    """The specs of a bridged call's two legs (side 0, side 1) in `mode`."""
    from switchboard.media.engine import WHATSAPP_LEG, Codec, LegSpec, TransportProfile

    pcmu = LegSpec(profile=TransportProfile.RTP, codecs=(Codec.PCMU, Codec.TELEPHONE_EVENT))
    return {"opus": (WHATSAPP_LEG, WHATSAPP_LEG), "transcode": (WHATSAPP_LEG, pcmu), "rtp": (pcmu, pcmu)}[
        mode
    ]


def run_loop(main: Any, loop: str) -> None:
    if loop == "uvloop":
        import uvloop

        uvloop.run(main)
    else:
        asyncio.run(main)


def rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * PAGE


def checked_calls(calls: int, count: int) -> list[int]:
    picks = [0, calls // 2, calls - 1, calls // 4, (3 * calls) // 4, calls // 8]
    out: list[int] = []
    for pick in picks:
        if pick not in out and 0 <= pick < calls:
            out.append(pick)
    return out[:count]


def call_freqs(call: int, checked: list[int]) -> tuple[float, float]:
    if call in checked:
        k = checked.index(call)
        return 600.0 + 100.0 * k, 1400.0 + 350.0 * k
    return SIDE_FREQS


# --- process B: the callers ------------------------------------------------------------------------------


def load_main(
    conn: Any, calls: int, check: int, record_s: float, record_dir: str, mode: str, loop_kind: str
) -> None:
    from switchboard.media.embedded import EmbeddedMediaEngine
    from switchboard.media.engine import (
        MediaEvent,
        MediaFailed,
        MediaLocator,
        MediaStarted,
        RecordingFormat,
        Tone,
    )
    from switchboard.media.tones import read_wav, tone_power_ratio

    async def run() -> None:
        loop = asyncio.get_running_loop()
        engine = EmbeddedMediaEngine(addresses=["127.0.0.1"], no_media_timeout=60, rtp_ports=(40000, 49999))
        await engine.start()
        specs = leg_specs(mode)
        started: set[str] = set()
        failed: dict[str, str] = {}
        all_started = asyncio.Event()
        legs_total = 2 * calls

        def sink(event: MediaEvent) -> None:
            if isinstance(event, MediaStarted):
                started.add(event.leg_id)
                if len(started) == legs_total:
                    all_started.set()
            elif isinstance(event, MediaFailed):
                failed[event.leg_id] = event.reason

        legs = [await engine.create_leg(f"caller{i}", sink, specs[i % 2]) for i in range(legs_total)]
        conn.send([await leg.offer() for leg in legs])
        answers = await loop.run_in_executor(None, conn.recv)
        t_connect = time.monotonic()
        for leg, answer in zip(legs, answers, strict=True):
            await leg.accept_answer(answer)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_started.wait(), 60)
        connect_s = time.monotonic() - t_connect
        checked = checked_calls(calls, check)
        for call in range(calls):
            freqs = call_freqs(call, checked)
            for side in (0, 1):
                tone = Tone(freqs[side], TONE_MS)
                await legs[2 * call + side].play(tone, loop_count=0, playback_id=f"tone{call}.{side}")
        conn.send(("ready", len(started), connect_s, dict(list(failed.items())[:5])))

        assert await loop.run_in_executor(None, conn.recv) == "window"
        t0, c0 = time.monotonic(), time.process_time()
        sent0 = sum(leg.diagnostics().packets_sent for leg in legs)
        recv0 = sum(leg.diagnostics().packets_received for leg in legs)
        await asyncio.sleep(1.0)
        paths: dict[tuple[int, int], Path] = {}
        for call in checked:
            for side in (0, 1):
                path = Path(record_dir) / f"call{call}-side{side}.wav"
                await legs[2 * call + side].start_recording(
                    MediaLocator.for_path(path), fmt=RecordingFormat.WAV, recording_id=f"rec{call}.{side}"
                )
                paths[(call, side)] = path
        await asyncio.sleep(record_s)
        for call in checked:
            for side in (0, 1):
                await legs[2 * call + side].stop_recording()

        assert await loop.run_in_executor(None, conn.recv) == "end"
        wall, cpu = time.monotonic() - t0, time.process_time() - c0
        sent = sum(leg.diagnostics().packets_sent for leg in legs) - sent0
        recv = sum(leg.diagnostics().packets_received for leg in legs) - recv0
        lost = sum(leg.diagnostics().packets_lost or 0 for leg in legs)

        audio = []
        others = {f for c in checked for f in call_freqs(c, checked)}
        for (call, side), path in paths.items():
            own, other = call_freqs(call, checked)[side], call_freqs(call, checked)[1 - side]
            pcm, rate = read_wav(path)
            pcm = pcm[rate // 2 :]  # skip the first 0.5 s (recording start)
            heard = tone_power_ratio(pcm, rate, other)
            own_ratio = tone_power_ratio(pcm, rate, own)
            crosstalk = max((tone_power_ratio(pcm, rate, f) for f in others - {own, other}), default=0.0)
            audio.append(
                {
                    "call": call,
                    "side": side,
                    "own_hz": own,
                    "expects_hz": other,
                    "other_ratio": round(heard, 3),
                    "own_ratio": round(own_ratio, 3),
                    "crosstalk_ratio": round(crosstalk, 4),
                    "seconds": round(len(pcm) / rate, 2),
                    "pass": heard >= 0.25 and crosstalk <= 0.02,
                }
            )
        conn.send(
            {
                "cpu": cpu / wall,
                "sent": sent,
                "received": recv,
                "wall": wall,
                "lost_total": lost,
                "overruns": engine.tick_overruns,
                "audio": audio,
            }
        )
        await engine.stop()

    run_loop(run(), loop_kind)


# --- process A: the bridge (measured) ---------------------------------------------------------------------


def bridge_main(
    conn: Any, calls: int, settle: float, window: float, bridge: bool, mode: str, loop_kind: str
) -> None:
    from switchboard.media.embedded import EmbeddedMediaEngine

    async def run() -> None:
        loop = asyncio.get_running_loop()
        engine = EmbeddedMediaEngine(addresses=["127.0.0.1"], no_media_timeout=60)
        await engine.start()
        specs = leg_specs(mode)
        rss_base = rss_bytes()
        offers = await loop.run_in_executor(None, conn.recv)
        legs = [
            await engine.create_leg(f"bridged{i}", lambda event: None, specs[i % 2])
            for i in range(len(offers))
        ]
        answers = [await leg.answer(offer) for leg, offer in zip(legs, offers, strict=True)]
        for i in range(0, len(legs), 2):
            if bridge:
                await engine.bridge(legs[i], legs[i + 1])
        conn.send(answers)
        assert await loop.run_in_executor(None, conn.recv) == "measure"
        await asyncio.sleep(settle)
        overruns0 = engine.tick_overruns
        rx0 = sum(leg.diagnostics().packets_received for leg in legs)
        tx0 = sum(leg.diagnostics().packets_sent for leg in legs)
        t0, c0 = time.monotonic(), time.process_time()
        conn.send("window")
        await asyncio.sleep(window)
        wall, cpu = time.monotonic() - t0, time.process_time() - c0
        rx = sum(leg.diagnostics().packets_received for leg in legs) - rx0
        tx = sum(leg.diagnostics().packets_sent for leg in legs) - tx0
        failures = [leg.diagnostics().failure for leg in legs if leg.diagnostics().failure]
        decoded = engine.frames_decoded
        conn.send(
            {
                "cpu": cpu / wall,
                "wall": wall,
                "rx": rx,
                "tx": tx,
                "overruns": engine.tick_overruns - overruns0,
                "rss_base": rss_base,
                "rss": rss_bytes(),
                "failures": failures[:5],
                "failure_count": len(failures),
                "frames_decoded": decoded,
            }
        )
        await engine.stop()

    run_loop(run(), loop_kind)


# --- the driver -------------------------------------------------------------------------------------------


async def measure(calls: int, args: argparse.Namespace) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    ctx = mp.get_context("spawn")
    a_conn, a_child = ctx.Pipe()
    b_conn, b_child = ctx.Pipe()
    with tempfile.TemporaryDirectory(prefix="sb-bridge-") as record_dir:
        proc_a = ctx.Process(
            target=bridge_main,
            args=(a_child, calls, args.settle, args.window, not args.no_bridge, args.mode, args.loop),
            name="bridge",
            daemon=True,
        )
        proc_b = ctx.Process(
            target=load_main,
            args=(b_child, calls, args.check, args.record, record_dir, args.mode, args.loop),
            name="load",
            daemon=True,
        )
        proc_a.start()
        proc_b.start()

        def recv(conn: Any) -> Any:
            return loop.run_in_executor(None, conn.recv)

        try:
            offers = await recv(b_conn)
            a_conn.send(offers)
            b_conn.send(await recv(a_conn))
            _, started, connect_s, setup_failures = await recv(b_conn)
            a_conn.send("measure")
            assert await recv(a_conn) == "window"
            load0 = os.getloadavg()
            b_conn.send("window")
            a = await recv(a_conn)
            b_conn.send("end")
            b = await recv(b_conn)
            load1 = os.getloadavg()
        finally:
            for proc in (proc_a, proc_b):
                await loop.run_in_executor(None, proc.join, 20)
                if proc.is_alive():
                    proc.kill()

    legs = 2 * calls
    cpu_pct = a["cpu"] * 100
    per_call = cpu_pct / calls
    audio_pass = sum(item["pass"] for item in b["audio"])
    return {
        "calls": calls,
        "legs": legs,
        "legs_started": started,
        "connect_s": round(connect_s, 2),
        "setup_failures": setup_failures,
        "window_s": round(a["wall"], 2),
        "load_average": [round(x, 2) for x in load0],
        "load_average_after": [round(x, 2) for x in load1],
        "bridge_cpu_percent_of_core": round(cpu_pct, 2),
        "bridge_cpu_percent_per_call": round(per_call, 4),
        "calls_per_core_at_100": round(100 / per_call, 1),
        "calls_per_core_at_70": round(70 / per_call, 1),
        "bridge_rx_pps": round(a["rx"] / a["wall"], 1),
        "bridge_tx_pps": round(a["tx"] / a["wall"], 1),
        "expected_pps": legs * 50,
        "bridge_ticker_overruns": a["overruns"],
        "bridge_failures": a["failure_count"],
        "bridge_frames_decoded": a["frames_decoded"],
        "bridge_failure_samples": a["failures"],
        "bridge_rss_mb": round(a["rss"] / 2**20, 1),
        "bridge_rss_base_mb": round(a["rss_base"] / 2**20, 1),
        "bridge_rss_kb_per_call": round((a["rss"] - a["rss_base"]) / 1024 / calls, 1),
        "load_cpu_percent_of_core": round(b["cpu"] * 100, 2),
        "load_tx_pps": round(b["sent"] / b["wall"], 1),
        "load_rx_pps": round(b["received"] / b["wall"], 1),
        "load_ticker_overruns": b["overruns"],
        "load_packets_lost_total": b["lost_total"],
        "audio_checks": b["audio"],
        "audio_pass": f"{audio_pass}/{len(b['audio'])}",
    }


def fit(rows: list[dict[str, Any]]) -> dict[str, float] | None:
    """Least squares CPU% = fixed + per_call * N over all N: the marginal cost of one more bridged call."""
    if len(rows) < 2:
        return None
    xs = [float(r["calls"]) for r in rows]
    ys = [float(r["bridge_cpu_percent_of_core"]) for r in rows]
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    fixed = my - slope * mx
    return {
        "fixed_percent": round(fixed, 2),
        "marginal_percent_per_call": round(slope, 4),
        "calls_per_core_at_100": round((100 - fixed) / slope, 1),
        "calls_per_core_at_70": round((70 - fixed) / slope, 1),
    }


def print_table(result: dict[str, Any]) -> None:
    print(
        f"\nbridged calls ({result['mode']}, {result['loop']} loop)  {result['date']}  "
        f"Python {result['python']}  {result['cpus']} CPUs  window {result['window_s']} s"
    )
    head = (
        f"{'N':>4} {'CPU%':>6} {'%/call':>7} {'N@100%':>7} {'N@70%':>6} {'rx pps':>7} {'tx pps':>7} "
        f"{'expect':>6} {'ovr':>4} {'fail':>4} {'RSS MB':>7} {'KB/call':>8} {'load%':>6} {'audio':>6} "
        f"{'loadavg':>6}"
    )
    print(head)
    for r in result["rows"]:
        print(
            f"{r['calls']:>4} {r['bridge_cpu_percent_of_core']:>6} {r['bridge_cpu_percent_per_call']:>7.3f} "
            f"{r['calls_per_core_at_100']:>7} {r['calls_per_core_at_70']:>6} {r['bridge_rx_pps']:>7} "
            f"{r['bridge_tx_pps']:>7} {r['expected_pps']:>6} {r['bridge_ticker_overruns']:>4} "
            f"{r['bridge_failures']:>4} {r['bridge_rss_mb']:>7} {r['bridge_rss_kb_per_call']:>8} "
            f"{r['load_cpu_percent_of_core']:>6} {r['audio_pass']:>6} {r['load_average'][0]:>6}"
        )
    line = result.get("fit")
    if line:
        print(
            f"fit: CPU% ≈ {line['fixed_percent']} + {line['marginal_percent_per_call']} * N  → "
            f"{line['calls_per_core_at_100']} calls/core at 100 %, {line['calls_per_core_at_70']} at 70 %"
        )
    print("targets: ≥ 300 bridged Opus calls per core; ≥ 60 transcoded Opus ⇄ PCMU calls per core")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", default="10,30,60,100,150", help="comma-separated N (bridged calls)")
    parser.add_argument("--window", type=float, default=15.0, help="measured seconds per N (default 15)")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds after connect before measuring")
    parser.add_argument("--check", type=int, default=3, help="calls per N whose audio is checked (default 3)")
    parser.add_argument("--record", type=float, default=4.0, help="seconds recorded per checked leg")
    parser.add_argument("--mode", choices=("opus", "transcode", "rtp"), default="opus", help="leg kinds")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio", help="event loop")
    parser.add_argument(
        "--no-bridge", action="store_true", help="negative control: answer the legs but never bridge them"
    )
    parser.add_argument(
        "--out", type=Path, help="result JSON (default bench/results/bridge_capacity-<time>.json)"
    )
    args = parser.parse_args()
    if args.record + 1.5 > args.window:
        parser.error("--window must exceed --record by at least 1.5 s")
    ns = [int(x) for x in args.calls.split(",") if x.strip()]
    rows = []
    for n in ns:
        row = asyncio.run(measure(n, args))
        rows.append(row)
        print(
            f"N={n}: {row['bridge_cpu_percent_of_core']} % of a core, "
            f"{row['bridge_cpu_percent_per_call']:.3f} %/call, "
            f"rx {row['bridge_rx_pps']}/{row['expected_pps']} pps, audio {row['audio_pass']}",
            flush=True,
        )
    result = {
        "benchmark": "bridge_capacity",
        "mode": args.mode,
        "loop": args.loop,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "window_s": args.window,
        "settle_s": args.settle,
        "bridged": not args.no_bridge,
        "rows": rows,
        "fit": fit(rows),
    }
    print_table(result)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    out = args.out or RESULTS / f"bridge_capacity-{args.mode}-{args.loop}-{stamp}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    sys.exit(0)


if __name__ == "__main__":
    main()
