"""A person's browser is the WhatsApp user: Debian's Chromium on the emulator's phone page calls the
business; the app answers, plays a tone the browser hears, records the browser's microphone and captures
a key pressed on the page's keypad (Chromium's RTCDTMFSender: RFC 4733)."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import wave
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from support.audio import tone_wav
from support.platform import PHONE_NUMBER_ID, Platform
from switchboard.media.tones import tone_power_ratio

if TYPE_CHECKING:
    from playwright.async_api import Browser, Playwright

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium (scripts/setup)"),
]

CHROMIUM_FLAGS = [
    "--allow-loopback-in-peer-connection",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BOTH_STATES = """
([call, media]) => document.getElementById("call-state").textContent === call
  && document.getElementById("media-state").textContent === media
"""
TIMER_AT_LEAST = """
(seconds) => {
  const match = /^(\\d\\d):(\\d\\d)$/.exec(document.getElementById("timer").textContent);
  return match !== null && Number(match[1]) * 60 + Number(match[2]) >= seconds;
}
"""
PEAK_JS = """
async () => {
  const audio = document.getElementById("remote");
  const context = new AudioContext();
  const source = context.createMediaStreamSource(audio.srcObject);
  const analyser = context.createAnalyser();
  analyser.fftSize = 8192;
  const mute = context.createGain();
  mute.gain.value = 0;
  source.connect(analyser).connect(mute).connect(context.destination);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const bins = new Float32Array(analyser.frequencyBinCount);
  analyser.getFloatFrequencyData(bins);
  let best = 0;
  for (let i = 1; i < bins.length; i++) if (bins[i] > bins[best]) best = i;
  return { hz: best * context.sampleRate / analyser.fftSize, db: bins[best] };
}
"""


async def _launch(playwright: Playwright, tmp_path: Path, mic: Path | None) -> Browser:
    """Debian's Chromium; with `mic`, a fake microphone playing that WAV, granted without asking;
    without it, no fake devices and no permission, as on a machine without a microphone."""
    media = []
    if mic is not None:
        media = [
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={mic}",
            "--autoplay-policy=no-user-gesture-required",
        ]
    return await playwright.chromium.launch(
        executable_path=shutil.which("chromium"),
        args=[*CHROMIUM_FLAGS, *media],
        env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")},
    )


async def test_browser_calls_business_through_the_phone_page(platform: Platform, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    await platform.subscribe()
    mic = tmp_path / "mic.wav"
    mic.write_bytes(tone_wav(440, 10.0))
    files = {"file": ("tone.wav", tone_wav(1200, 6.0), "audio/wav")}
    tone_id = (await platform.api.post("/calls/1/files", files=files)).json()["id"]
    async with async_playwright() as playwright:
        browser = await _launch(playwright, tmp_path, mic)
        try:
            page = await browser.new_page()
            await page.goto(platform.emulator.phone_url)
            await page.wait_for_selector(f"#number option[value='{PHONE_NUMBER_ID}']", state="attached")
            await page.fill("#wa_id", "15550009999")
            await page.click("#call")

            call_id = (await platform.app.wait_for("CALL_RECEIVED"))["callId"]
            assert (await platform.api.post(f"/calls/1/calls/{call_id}/answer", json={})).status_code == 200
            await platform.app.wait_for("CALL_ESTABLISHED", call_id)
            await page.wait_for_function(BOTH_STATES, arg=["accepted", "connected"], timeout=15000)
            await platform.api.post(f"/calls/1/calls/{call_id}/start-recording", json={})
            await platform.api.post(
                f"/calls/1/calls/{call_id}/play", json={"content": {"type": "FILE", "fileId": tone_id}}
            )
            peak = await asyncio.wait_for(page.evaluate(PEAK_JS), 20)
            assert abs(peak["hz"] - 1200) < 30, f"the browser heard {peak}"

            await platform.api.post(
                f"/calls/1/calls/{call_id}/capture/dtmf", json={"maxLength": 1, "timeout": 10000}
            )
            await page.click("#keypad button:text-is('7')")
            captured = await platform.app.wait_for("DTMF_CAPTURED", call_id)
            assert captured["properties"]["dtmf"] == "7"
            assert await page.text_content("#digits") == "7"
            await page.wait_for_function(TIMER_AT_LEAST, arg=2, timeout=5000)

            await platform.api.post(f"/calls/1/calls/{call_id}/stop-recording", json={})
            ready = await platform.app.wait_for("CALL_RECORDING_READY", call_id)
            recording_id = ready["properties"]["recording"]["files"][0]["id"]
            await page.click("#hangup")
            await platform.app.wait_for("CALL_FINISHED", call_id)
            assert await page.text_content("#call-state") == "terminated"
            assert await page.is_hidden("#note")
        finally:
            await browser.close()

    download = await platform.api.get(f"/calls/1/recordings/files/{recording_id}")
    with wave.open(io.BytesIO(download.content)) as wav:
        rate = wav.getframerate()
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    assert tone_power_ratio(pcm, rate, 440) > 0.1, "the recording does not hold the browser's microphone"


async def test_without_a_microphone_the_phone_page_calls_receive_only_and_says_so(
    platform: Platform, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright

    await platform.subscribe()
    async with async_playwright() as playwright:
        browser = await _launch(playwright, tmp_path, mic=None)
        try:
            page = await browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            await page.goto(platform.emulator.phone_url)
            await page.wait_for_selector(f"#number option[value='{PHONE_NUMBER_ID}']", state="attached")
            await page.click("#call")

            call_id = (await platform.app.wait_for("CALL_RECEIVED"))["callId"]
            note = await page.text_content("#note")
            assert await page.is_visible("#note")
            assert note is not None and "No microphone" in note and "receive-only" in note, note
            assert (await platform.api.post(f"/calls/1/calls/{call_id}/answer", json={})).status_code == 200
            await page.wait_for_function(BOTH_STATES, arg=["accepted", "connected"], timeout=15000)

            await platform.api.post(
                f"/calls/1/calls/{call_id}/capture/dtmf", json={"maxLength": 2, "timeout": 10000}
            )
            await page.click("#keypad button:text-is('4')")
            await page.click("#keypad button:text-is('2')")
            captured = await platform.app.wait_for("DTMF_CAPTURED", call_id)
            assert captured["properties"]["dtmf"] == "42"
            assert await page.text_content("#digits") == "42"
            record = (await platform.api.get(f"/calls/1/calls/{call_id}")).json()
            assert record["mediaDiagnostics"]["packetsReceived"] > 0, "the page sent no audio packets"

            await page.click("#hangup")
            await platform.app.wait_for("CALL_FINISHED", call_id)
            assert errors == []
        finally:
            await browser.close()
