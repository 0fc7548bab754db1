"""Every transport profile of the embedded engine against real far ends on 127.0.0.1: an aiortc peer as a
browser (we are ICE controlled), a plain RTP phone, an SDES-SRTP phone, and bridges between Opus and PCMU
legs (transcoded) with RFC 4733 keys crossing them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import aioice.ice
import numpy as np
import pytest

from support.media_peers import AiortcPeer, Events, RtpPeer, meta_like
from switchboard.media.embedded import EmbeddedMediaEngine, SdpError
from switchboard.media.engine import (
    WHATSAPP_LEG,
    Codec,
    DtmfMode,
    DtmfReceived,
    DtmfSource,
    LegSpec,
    MediaLeg,
    MediaLocator,
    MediaStarted,
    PlaybackFinished,
    RecordingFormat,
    SrtpPolicy,
    Tone,
    TransportProfile,
)
from switchboard.media.inband import InbandDtmfDetector
from switchboard.media.tones import dominant_frequency, read_wav, tone_power_ratio

BROWSER = LegSpec(
    profile=TransportProfile.WEBRTC_CONTROLLED, codecs=(Codec.OPUS, Codec.PCMU, Codec.TELEPHONE_EVENT)
)
SIP = LegSpec(profile=TransportProfile.RTP, codecs=(Codec.PCMU, Codec.PCMA, Codec.TELEPHONE_EVENT))
SIP_SDES = LegSpec(
    profile=TransportProfile.RTP, codecs=(Codec.PCMU, Codec.TELEPHONE_EVENT), srtp=SrtpPolicy.SDES
)


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


@pytest.fixture
async def engine() -> AsyncIterator[EmbeddedMediaEngine]:
    engine = EmbeddedMediaEngine(addresses=["127.0.0.1"], no_media_timeout=3.0, rtp_ports=(31000, 31999))
    await engine.start()
    try:
        yield engine
    finally:
        await engine.stop()


async def record(leg: MediaLeg, path: Path, seconds: float, events: Events) -> tuple[np.ndarray, int]:  # type: ignore[type-arg]
    await leg.start_recording(MediaLocator.for_path(path), fmt=RecordingFormat.WAV, recording_id=path.stem)
    await asyncio.sleep(seconds)
    await leg.stop_recording()
    pcm, rate = read_wav(path)
    return pcm[rate // 4 :], rate


async def rtp_call(
    engine: EmbeddedMediaEngine, peer: RtpPeer, spec: LegSpec = SIP
) -> tuple[MediaLeg, Events]:
    await peer.start()
    events = Events()
    leg = await engine.create_leg(f"sip-{peer.port}", events, spec)
    peer.accept(await leg.answer(peer.offer()))
    peer.begin()
    return leg, events


async def test_browser_offer_to_a_controlled_leg_carries_audio_both_ways(
    engine: EmbeddedMediaEngine, tmp_path: Path
) -> None:
    browser = AiortcPeer(700)
    events = Events()
    leg = await engine.create_leg("browser", events, BROWSER)
    try:
        offer = await browser.offer()
        assert "a=setup:actpass" in offer
        answer = await leg.answer(offer)
        assert "a=setup:active\r\n" in answer and "a=mid:0\r\n" in answer and "a=rtcp-mux" in answer
        assert " UDP/TLS/RTP/SAVPF 96" in answer or "opus/48000/2" in answer
        await browser.accept(answer)
        await events.wait_for(MediaStarted)
        await leg.play(Tone(1000, 3000), playback_id="to-browser")
        pcm, rate = await record(leg, tmp_path / "from-browser.wav", 1.5, events)
        assert abs(dominant_frequency(browser.heard(1.0), 48000) - 1000) < 30
        # What we record is what we send (1000 Hz) mixed with what the browser sends (700 Hz).
        assert tone_power_ratio(pcm, rate, 700) > 0.2
        assert leg.diagnostics().codec == "opus/48000/2"
    finally:
        await leg.close()
        await browser.close()


async def test_our_offer_to_a_browser(engine: EmbeddedMediaEngine) -> None:
    browser = AiortcPeer(600)
    events = Events()
    leg = await engine.create_leg("to-browser", events, BROWSER)
    try:
        offer = await leg.offer()
        assert "a=setup:actpass" in offer
        await leg.accept_answer(await browser.answer(offer))
        await events.wait_for(MediaStarted)
        await leg.play(Tone(1200, 2000), playback_id="p")
        await asyncio.sleep(1.5)
        assert abs(dominant_frequency(browser.heard(1.0), 48000) - 1200) < 30
    finally:
        await leg.close()
        await browser.close()


async def test_plain_rtp_phone_bridged_to_whatsapp_is_transcoded_both_ways(
    engine: EmbeddedMediaEngine,
) -> None:
    whatsapp = AiortcPeer(1000)
    phone = RtpPeer(440)
    wa_events = Events()
    wa_leg = await engine.create_leg("wa", wa_events, WHATSAPP_LEG)
    sip_leg, sip_events = await rtp_call(engine, phone)
    try:
        await whatsapp.accept(await wa_leg.answer(meta_like(await whatsapp.offer())))
        await wa_events.wait_for(MediaStarted)
        await sip_events.wait_for(MediaStarted)
        assert sip_leg.diagnostics().selected_pair is not None
        await engine.bridge(wa_leg, sip_leg)
        await asyncio.sleep(2.0)
        assert abs(dominant_frequency(whatsapp.heard(1.0), 48000) - 440) < 20
        assert tone_power_ratio(whatsapp.heard(1.0), 48000, 440) > 0.5
        heard = phone.heard(1.0)
        assert heard.size >= 7000
        assert abs(dominant_frequency(heard, 8000) - 1000) < 20
        assert tone_power_ratio(heard, 8000, 1000) > 0.5
        assert engine.frames_decoded > 50
        assert sip_leg.diagnostics().codec == "PCMU/8000"
        assert sip_leg.diagnostics().packets_lost == 0
    finally:
        await wa_leg.close()
        await sip_leg.close()
        await whatsapp.close()
        await phone.close()


async def test_bridge_of_two_opus_legs_never_decodes(engine: EmbeddedMediaEngine) -> None:
    peers = [AiortcPeer(500), AiortcPeer(900)]
    legs, all_events = [], []
    try:
        for index, peer in enumerate(peers):
            events = Events()
            leg = await engine.create_leg(f"opus{index}", events, WHATSAPP_LEG)
            await peer.accept(await leg.answer(meta_like(await peer.offer())))
            legs.append(leg)
            all_events.append(events)
        for events in all_events:
            await events.wait_for(MediaStarted)
        await engine.bridge(legs[0], legs[1])
        await asyncio.sleep(1.5)
        assert abs(dominant_frequency(peers[0].heard(1.0), 48000) - 900) < 20
        assert engine.frames_decoded == 0
    finally:
        for leg in legs:
            await leg.close()
        for peer in peers:
            await peer.close()


async def test_sdes_srtp_phone_hears_and_is_heard(engine: EmbeddedMediaEngine, tmp_path: Path) -> None:
    for suite in ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"):
        phone = RtpPeer(550, srtp=True, suite=suite)
        await phone.start()
        events = Events()
        leg = await engine.create_leg(f"srtp-{suite}", events, SIP_SDES)
        try:
            answer = await leg.answer(phone.offer())
            assert " RTP/SAVP 0 101\r\n" in answer and f"a=crypto:1 {suite} inline:" in answer
            phone.accept(answer)
            phone.begin()
            await events.wait_for(MediaStarted)
            await leg.play(Tone(1300, 3000), playback_id="srtp")
            pcm, rate = await record(leg, tmp_path / f"{suite}.wav", 1.5, events)
            assert abs(dominant_frequency(phone.heard(1.0), 8000) - 1300) < 20
            assert tone_power_ratio(pcm, rate, 550) > 0.2
        finally:
            await leg.close()
            await phone.close()


async def test_sdes_policy_refuses_plain_offers_and_plain_refuses_savp(engine: EmbeddedMediaEngine) -> None:
    phone = RtpPeer(None)
    await phone.start()
    try:
        leg = await engine.create_leg("needs-srtp", Events(), SIP_SDES)
        with pytest.raises(SdpError, match="no usable a=crypto"):
            await leg.answer(phone.offer())
        await leg.close()
        phone.srtp = True
        leg = await engine.create_leg("plain-only", Events(), SIP)
        with pytest.raises(SdpError, match="requires SRTP"):
            await leg.answer(phone.offer())
        await leg.close()
    finally:
        await phone.close()


async def test_symmetric_rtp_latches_onto_the_source_address(engine: EmbeddedMediaEngine) -> None:
    phone = RtpPeer(440, send_from_other_port=True)
    leg, events = await rtp_call(engine, phone)
    try:
        await events.wait_for(MediaStarted)
        await asyncio.sleep(0.3)
        before = phone.packets_on(phone.sdp_socket)
        await asyncio.sleep(0.5)
        assert phone.packets_on(phone.send_socket) >= 20
        assert phone.packets_on(phone.sdp_socket) == before
        assert f":{phone.send_socket.transport.get_extra_info('sockname')[1]} (latched)" in (  # type: ignore[union-attr]
            leg.diagnostics().selected_pair or ""
        )
    finally:
        await leg.close()
        await phone.close()


async def test_rtp_leg_sends_comfort_silence_and_keeps_the_leg_through_a_hold_reoffer(
    engine: EmbeddedMediaEngine,
) -> None:
    phone = RtpPeer(440)
    leg, events = await rtp_call(engine, phone)
    try:
        await events.wait_for(MediaStarted)
        leg.set_sending(False)
        await asyncio.sleep(0.5)
        held = phone.heard(0.4)
        assert held.size > 2000 and np.abs(held).max() < 50  # silence, still flowing
        leg.set_sending(True)
        # Hold: the phone says sendonly; we answer recvonly and stop sending, the leg stays up.
        phone.frequency = 300
        answer = await leg.answer(phone.offer("sendonly", version=2))
        assert "a=recvonly" in answer and "o=- " in answer
        await asyncio.sleep(0.3)
        count = len(phone.audio)
        await asyncio.sleep(0.5)
        assert len(phone.audio) == count
        # Unhold.
        answer = await leg.answer(phone.offer("sendrecv", version=3))
        assert "a=sendrecv" in answer
        await leg.play(Tone(900, 2000), playback_id="back")
        await asyncio.sleep(1.0)
        assert abs(dominant_frequency(phone.heard(0.6), 8000) - 900) < 20
        assert not [e for e in events.items if type(e).__name__ == "MediaFailed"]
    finally:
        await leg.close()
        await phone.close()


async def test_rfc4733_keys_cross_an_opus_pcmu_bridge(engine: EmbeddedMediaEngine) -> None:
    """phone ⇄ [sip leg ═ bridge ═ wa leg] ⇄ whatsapp (another engine leg, so its keys are visible)."""
    phone = RtpPeer(440)
    sip_leg, sip_events = await rtp_call(engine, phone)
    wa_events, far_events = Events(), Events()
    wa_leg = await engine.create_leg("wa", wa_events, WHATSAPP_LEG)
    far = await engine.create_leg("far", far_events, WHATSAPP_LEG)
    try:
        await far.accept_answer(await wa_leg.answer(await far.offer()))
        await far_events.wait_for(MediaStarted)
        await sip_events.wait_for(MediaStarted)
        await engine.bridge(sip_leg, wa_leg)
        await phone.press("12")
        digits = await far_events.wait_for(DtmfReceived, count=2)
        assert [(d.digit, d.source) for d in digits] == [("1", DtmfSource.RFC4733), ("2", DtmfSource.RFC4733)]
        assert [d.digit for d in await sip_events.wait_for(DtmfReceived, count=2)] == ["1", "2"]
        assert all(80 <= d.duration_ms <= 120 for d in digits)
        await far.send_dtmf("#9")
        async with asyncio.timeout(5):
            while len(phone.digits) < 2:
                await asyncio.sleep(0.05)
        assert [d for d, _ in phone.digits] == ["#", "9"]
        # The WhatsApp-side leg heard only the far end's keys, not the phone's.
        assert [e.digit for e in wa_events.items if isinstance(e, DtmfReceived)] == ["#", "9"]
    finally:
        for leg in (sip_leg, wa_leg, far):
            await leg.close()
        await phone.close()


async def test_inband_leg_gets_keys_as_tones(engine: EmbeddedMediaEngine) -> None:
    phone = RtpPeer(None, codec=Codec.PCMA)
    spec = LegSpec(profile=TransportProfile.RTP, codecs=(Codec.PCMA,), dtmf=DtmfMode.INBAND)
    leg, _events = await rtp_call(engine, phone, spec)
    try:
        await leg.send_dtmf("47", duration_ms=120, gap_ms=80)
        await asyncio.sleep(0.2)
        detector = InbandDtmfDetector(sample_rate=8000)
        found = detector.feed(phone.heard(5.0)) + detector.flush()
        assert [d for d, _ in found] == ["4", "7"]
    finally:
        await leg.close()
        await phone.close()


async def test_keys_cross_between_an_inband_phone_and_an_rfc4733_leg(engine: EmbeddedMediaEngine) -> None:
    phone = RtpPeer(None)
    spec = LegSpec(profile=TransportProfile.RTP, codecs=(Codec.PCMU,), dtmf=DtmfMode.INBAND)
    sip_leg, sip_events = await rtp_call(engine, phone, spec)
    wa_events, far_events = Events(), Events()
    wa_leg = await engine.create_leg("wa", wa_events, WHATSAPP_LEG)
    far = await engine.create_leg("far", far_events, WHATSAPP_LEG)
    try:
        assert "telephone-event" not in str(sip_leg.diagnostics().codec)
        await far.accept_answer(await wa_leg.answer(await far.offer()))
        await far_events.wait_for(MediaStarted)
        await engine.bridge(sip_leg, wa_leg)
        phone.press_inband("58")  # the phone sends nothing else: its first packet starts the media
        await sip_events.wait_for(MediaStarted)
        digits = await far_events.wait_for(DtmfReceived, count=2)
        assert [(d.digit, d.source) for d in digits] == [("5", DtmfSource.RFC4733), ("8", DtmfSource.RFC4733)]
        # Detected for the bridge only: no capture runs on the SIP leg, so it reports nothing.
        assert not [e for e in sip_events.items if isinstance(e, DtmfReceived)]
        await far.send_dtmf("3", duration_ms=150)
        await asyncio.sleep(0.6)
        detector = InbandDtmfDetector(sample_rate=8000)
        assert [d for d, _ in detector.feed(phone.heard(2.0)) + detector.flush()] == ["3"]
    finally:
        for leg in (sip_leg, wa_leg, far):
            await leg.close()
        await phone.close()


async def test_conference_mixer_each_member_hears_the_others(engine: EmbeddedMediaEngine) -> None:
    phones = [RtpPeer(f) for f in (400, 1000, 1700)]
    legs = []
    mixer = await engine.create_mixer("room")
    try:
        for phone in phones:
            leg, events = await rtp_call(engine, phone)
            await events.wait_for(MediaStarted)
            legs.append(leg)
            await mixer.add(leg)
        await asyncio.sleep(1.5)
        for index, phone in enumerate(phones):
            heard = phone.heard(1.0)
            others = [p.frequency for p in phones if p is not phone]
            for frequency in others:
                assert frequency is not None
                assert tone_power_ratio(heard, 8000, frequency) > 0.2, (index, frequency)
            assert phone.frequency is not None
            assert tone_power_ratio(heard, 8000, phone.frequency) < 0.02, index
        await mixer.remove(legs[0])
        await asyncio.sleep(0.6)
        assert tone_power_ratio(phones[1].heard(0.4), 8000, 400) < 0.02
        assert tone_power_ratio(phones[0].heard(0.4), 8000, 1000) < 0.02
    finally:
        await mixer.close()
        for leg in legs:
            await leg.close()
        for phone in phones:
            await phone.close()


async def test_prompt_to_a_pcmu_leg_finishes(engine: EmbeddedMediaEngine) -> None:
    phone = RtpPeer(None)
    leg, events = await rtp_call(engine, phone)
    try:
        await leg.play(Tone(800, 600), playback_id="short")
        finished = (await events.wait_for(PlaybackFinished, within=3))[0]
        assert finished.completed and 580 <= finished.duration_ms <= 620
        assert abs(dominant_frequency(phone.heard(1.0), 8000) - 800) < 20
    finally:
        await leg.close()
        await phone.close()


async def test_our_sdes_offer_to_a_phone(engine: EmbeddedMediaEngine) -> None:
    phone = RtpPeer(650, srtp=True)
    await phone.start()
    events = Events()
    leg = await engine.create_leg("outbound-sip", events, SIP_SDES)
    try:
        offer = await leg.offer()
        assert " RTP/SAVP 0 101\r\n" in offer
        assert "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" in offer
        assert "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:" in offer
        await leg.accept_answer(phone.answer(offer))
        phone.begin()
        await events.wait_for(MediaStarted)
        await leg.play(Tone(1100, 2000), playback_id="out")
        await asyncio.sleep(1.2)
        assert abs(dominant_frequency(phone.heard(0.8), 8000) - 1100) < 20
        assert leg.diagnostics().packets_received > 30
    finally:
        await leg.close()
        await phone.close()


async def test_dtls_role_follows_the_browser_setup(engine: EmbeddedMediaEngine) -> None:
    browser = AiortcPeer(440)
    try:
        offer = await browser.offer()
        for theirs, ours in (("active", "passive"), ("passive", "active"), ("actpass", "active")):
            leg = await engine.create_leg(f"setup-{theirs}", Events(), BROWSER)
            answer = await leg.answer(offer.replace("a=setup:actpass", f"a=setup:{theirs}"))
            assert f"a=setup:{ours}\r\n" in answer
            await leg.close()
    finally:
        await browser.close()


async def test_a_reoffer_that_changes_the_codec_replans_the_bridge(engine: EmbeddedMediaEngine) -> None:
    whatsapp = AiortcPeer(1000)
    phone = RtpPeer(440)
    wa_events = Events()
    wa_leg = await engine.create_leg("wa", wa_events, WHATSAPP_LEG)
    sip_leg, _sip_events = await rtp_call(engine, phone)
    try:
        await whatsapp.accept(await wa_leg.answer(meta_like(await whatsapp.offer())))
        await wa_events.wait_for(MediaStarted)
        await engine.bridge(wa_leg, sip_leg)
        await asyncio.sleep(1.0)
        phone.switch_codec(Codec.PCMA)
        phone.frequency = 600
        answer = await sip_leg.answer(phone.offer(version=2))
        assert " RTP/AVP 8 101\r\n" in answer
        await asyncio.sleep(1.5)
        assert sip_leg.diagnostics().codec == "PCMA/8000"
        assert abs(dominant_frequency(whatsapp.heard(0.8), 48000) - 600) < 20
        assert abs(dominant_frequency(phone.heard(0.8), 8000) - 1000) < 20
    finally:
        await wa_leg.close()
        await sip_leg.close()
        await whatsapp.close()
        await phone.close()


async def test_an_rtp_leg_advertises_its_specs_address_and_still_carries_media_locally(
    engine: EmbeddedMediaEngine,
) -> None:
    spec = replace(SIP, advertised_address="203.0.113.7")
    leg = await engine.create_leg("public", Events(), spec)
    try:
        offer = await leg.offer()
        assert "c=IN IP4 203.0.113.7\r\n" in offer and " IN IP4 203.0.113.7\r\n" in offer.split("s=")[0]
        assert "127.0.0.1" not in offer
    finally:
        await leg.close()
    phone = RtpPeer(440)
    await phone.start()
    events = Events()
    leg = await engine.create_leg("public-answer", events, spec)
    try:
        answer = await leg.answer(phone.offer())
        assert "c=IN IP4 203.0.113.7\r\n" in answer
        phone.accept(answer.replace("203.0.113.7", "127.0.0.1"))  # what the NAT in front of us does
        phone.begin()
        await events.wait_for(MediaStarted)
    finally:
        await leg.close()
        await phone.close()
