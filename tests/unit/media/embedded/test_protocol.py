"""The embedded engine is a `MediaEngine` (checked by mypy) and refuses use before `start()`."""

from __future__ import annotations

import pytest

from switchboard.core.errors import MediaError
from switchboard.media.embedded import EmbeddedMediaEngine
from switchboard.media.engine import WHATSAPP_LEG, LegSpec, MediaEngine, SrtpPolicy, TransportProfile


async def test_engine_satisfies_the_protocol_and_needs_start() -> None:
    engine: MediaEngine = EmbeddedMediaEngine(addresses=["127.0.0.1"])
    with pytest.raises(MediaError, match="not started"):
        await engine.create_leg("x", lambda event: None, WHATSAPP_LEG)
    await engine.start()
    leg = await engine.create_leg("x", lambda event: None, WHATSAPP_LEG)
    with pytest.raises(MediaError, match="already exists"):
        await engine.create_leg("x", lambda event: None, WHATSAPP_LEG)
    with pytest.raises(MediaError, match="needs an offer"):
        await leg.accept_answer("v=0\r\n")
    await engine.stop()


async def test_srtp_policy_is_for_rtp_legs_and_mixers_need_start() -> None:
    engine = EmbeddedMediaEngine(addresses=["127.0.0.1"])
    with pytest.raises(MediaError, match="not started"):
        await engine.create_mixer("m")
    await engine.start()
    try:
        spec = LegSpec(profile=TransportProfile.WEBRTC_CONTROLLED, srtp=SrtpPolicy.SDES)
        with pytest.raises(MediaError, match="always use DTLS-SRTP"):
            await engine.create_leg("x", lambda event: None, spec)
        mixer = await engine.create_mixer("m")
        assert mixer.id == "m"
        await mixer.close()
    finally:
        await engine.stop()
