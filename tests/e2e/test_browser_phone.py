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

import numpy as np
import pytest

from support.audio import tone_wav
from support.platform import PHONE_NUMBER_ID, Platform
from switchboard.media.tones import tone_power_ratio

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium (scripts/setup)"),
]

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


async def test_browser_calls_business_through_the_phone_page(platform: Platform, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    await platform.subscribe()
    mic = tmp_path / "mic.wav"
    mic.write_bytes(tone_wav(440, 10.0))
    files = {"file": ("tone.wav", tone_wav(1200, 6.0), "audio/wav")}
    tone_id = (await platform.api.post("/calls/1/files", files=files)).json()["id"]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=shutil.which("chromium"),
            args=[
                "--allow-loopback-in-peer-connection",
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={mic}",
                "--autoplay-policy=no-user-gesture-required",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
            env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")},
        )
        try:
            page = await browser.new_page()
            await page.goto(platform.emulator.phone_url)
            await page.wait_for_selector(f"#number option[value='{PHONE_NUMBER_ID}']", state="attached")
            await page.fill("#wa_id", "15550009999")
            await page.click("#call")

            call_id = (await platform.app.wait_for("CALL_RECEIVED"))["callId"]
            assert (await platform.api.post(f"/calls/1/calls/{call_id}/answer", json={})).status_code == 200
            await platform.app.wait_for("CALL_ESTABLISHED", call_id)
            await page.wait_for_function(
                "document.getElementById('status').textContent === 'media: connected'", timeout=15000
            )
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

            await platform.api.post(f"/calls/1/calls/{call_id}/stop-recording", json={})
            ready = await platform.app.wait_for("CALL_RECORDING_READY", call_id)
            recording_id = ready["properties"]["recording"]["files"][0]["id"]
            await page.click("#hangup")
            await platform.app.wait_for("CALL_FINISHED", call_id)
        finally:
            await browser.close()

    download = await platform.api.get(f"/calls/1/recordings/files/{recording_id}")
    with wave.open(io.BytesIO(download.content)) as wav:
        rate = wav.getframerate()
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    assert tone_power_ratio(pcm, rate, 440) > 0.1, "the recording does not hold the browser's microphone"
