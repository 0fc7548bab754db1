"""The core refuses what would cost a call unbounded media work, whatever application asks, and says
which field of the request was at fault."""

import pytest

from support.control_rig import Rig
from switchboard.core.content import FileContent, UrlContent
from switchboard.core.events import PlayFinished
from switchboard.media.engine import (
    MAX_DTMF_DIGITS,
    AudioSource,
    InvalidDtmf,
    MediaLocator,
    UnplayableAudio,
)


@pytest.fixture
async def call_id(rig: Rig) -> str:
    rig.audio.files["page"] = MediaLocator("file:///srv/switchboard/files/uploads/1234.wav")
    return await rig.established_inbound()


@pytest.mark.parametrize("digits", ["1" * (MAX_DTMF_DIGITS + 1), "1" * 10_000, "12x", ""])
async def test_a_dtmf_string_that_is_too_long_or_not_keys_never_reaches_the_leg(
    rig: Rig, call_id: str, digits: str
) -> None:
    with pytest.raises(InvalidDtmf, match=r"^dtmf: "):
        await rig.control.send_dtmf(call_id, digits)
    assert rig.leg(call_id).sent_dtmf == []


async def test_content_that_is_not_audio_is_refused_naming_the_field(rig: Rig, call_id: str) -> None:
    leg = rig.leg(call_id)

    async def unplayable(source: AudioSource, *, loop_count: int = 1, playback_id: str) -> None:
        raise UnplayableAudio("1234.wav is not audio (Invalid data found when processing input)")

    leg.play = unplayable  # type: ignore[method-assign]
    with pytest.raises(UnplayableAudio) as caught:
        await rig.control.play(call_id, FileContent("page"))
    assert str(caught.value).startswith("content.fileId: 1234.wav is not audio")
    assert caught.value.status_hint == 400 and "/srv/" not in str(caught.value)
    with pytest.raises(UnplayableAudio, match=r"^content\.fileUrl: "):
        await rig.control.play(call_id, UrlContent("https://example.com/page.wav"))
    assert rig.events.find(PlayFinished, call_id) == []
