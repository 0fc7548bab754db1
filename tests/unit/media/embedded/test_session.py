"""The sans-I/O RTP pieces with a fake clock: statistics, the session's tick (playout, keys, hold,
silence), the decode stage, latching, and the transcoder of a bridge."""

from __future__ import annotations

import numpy as np

from switchboard.media.audio import OPUS_SILENCE
from switchboard.media.codecs import AudioFormat, silence_payload
from switchboard.media.embedded.bridge import Transcoder
from switchboard.media.embedded.rtcp import RtcpStatistics
from switchboard.media.embedded.rtp import RTP_HEADER, build_rtp, parse_report_blocks, rtp_payload
from switchboard.media.embedded.session import PacketKind, RtpSession
from switchboard.media.embedded.symmetric import Latch
from switchboard.media.engine import Codec, DtmfReceived, PlaybackFinished
from switchboard.media.g711 import ulaw_encode
from switchboard.media.rfc4733 import DtmfSender, TelephoneEvent

PCMU = AudioFormat(Codec.PCMU, 0)


def packet(seq: int, ts: int, *, pt: int = 0, ssrc: int = 77, payload: bytes = b"\xff" * 160) -> bytes:
    return build_rtp(payload_type=pt, sequence=seq, timestamp=ts, ssrc=ssrc, payload=payload, marker=False)


def fields(data: bytes) -> tuple[int, int, int, int]:
    _first, second, seq, ts, ssrc = RTP_HEADER.unpack_from(data)
    return second & 0x7F, seq, ts, ssrc


def pcmu_session() -> RtpSession:
    session = RtpSession("leg", ssrc=9, cname="c", sequence=100, timestamp=1000)
    session.configure(PCMU, 101, silence_payload(Codec.PCMU))
    return session


def test_statistics_count_loss_across_wrap_and_jitter_of_a_steady_stream() -> None:
    stats = RtcpStatistics(ssrc=1, cname="me")
    now = 10.0
    for index, seq in enumerate([65533, 65534, 65535, 0, 2, 3]):  # 1 lost after the wrap
        stats.on_received(packet(seq, 160 * index), now, 8000, True)
        now += 0.02
    assert stats.packets_lost == 1
    assert stats.jitter < 1.0  # perfectly paced
    block = stats.report_block(now)
    assert block is not None and block.highest_sequence == 65536 + 3 and block.cumulative_lost == 1
    assert 0.1 < block.fraction_lost < 0.2
    report = stats.sender_report(now, 1.7e9, 1234)
    assert parse_report_blocks(report)[0].ssrc == 77


def test_statistics_jitter_grows_with_irregular_arrival() -> None:
    stats = RtcpStatistics(ssrc=1, cname="me")
    for index in range(50):
        late = 0.01 if index % 2 else 0.0
        stats.on_received(packet(index, 160 * index), 1.0 + 0.02 * index + late, 8000, True)
    assert 30 < stats.jitter < 90  # ≈ 80 units of 8 kHz = 10 ms swings


def test_tick_sends_silence_then_playout_then_reports_it_finished() -> None:
    session = pcmu_session()
    now = 5.0
    out = session.tick(now)
    assert out is not None and rtp_payload(out) == silence_payload(Codec.PCMU)
    session.play([b"a" * 160, b"b" * 160], loop_count=2, playback_id="p")
    payloads = []
    for _ in range(4):
        now += 0.02
        sent = session.tick(now)
        assert sent is not None
        payloads.append(rtp_payload(sent)[:1])
    assert payloads == [b"a", b"b", b"a", b"b"]
    events = session.take_events()
    assert events == [PlaybackFinished("leg", "p", duration_ms=80, completed=True)]
    assert session.stats.packets_sent == 5


def test_rfc4733_keys_go_on_the_ticker_with_one_timestamp_per_key() -> None:
    session = pcmu_session()
    done: list[Exception | None] = []
    session.dtmf_out.add_events(DtmfSender("5", duration_ms=60).packets(), 0, done.append)
    sent = []
    now = 1.0
    for _ in range(6):
        now += 0.02
        out = session.tick(now)
        assert out is not None
        sent.append(out)
    events = [s for s in sent if fields(s)[0] == 101]
    assert len(events) == 5  # 60 ms at 20 ms: 3 packets, the last (E bit) sent 3 times
    assert len({fields(s)[2] for s in events}) == 1
    assert events[0][1] & 0x80 and not events[1][1] & 0x80
    assert TelephoneEvent.parse(rtp_payload(events[-1])).end
    assert done == [None]
    assert fields(sent[-1])[0] == 0  # audio again


def test_hold_sends_nothing_or_comfort_silence_and_peer_hold_sends_nothing() -> None:
    session = pcmu_session()
    session.sending = False
    assert session.tick(1.0) is None
    session.hold_silence = True
    held = session.tick(1.02)
    assert held is not None and rtp_payload(held) == silence_payload(Codec.PCMU)
    session.sending = True
    session.peer_receives = False
    assert session.tick(1.04) is None


def test_forwarded_packets_are_dropped_while_our_prompt_plays() -> None:
    session = pcmu_session()
    session.fed = True
    assert session.forward(packet(1, 1), 1.0, PacketKind.AUDIO) is not None
    session.play([b"x" * 160], loop_count=0, playback_id="moh")
    assert session.forward(packet(2, 161), 1.02, PacketKind.AUDIO) is None
    assert session.tick(1.02) is not None


def test_received_audio_is_decoded_only_while_consumed() -> None:
    session = pcmu_session()
    tone = (np.sin(2 * np.pi * 1000 * np.arange(160) / 8000) * 8000).astype(np.int16)
    assert session.receive_rtp(packet(1, 0, payload=ulaw_encode(tone)), 1.0) is PacketKind.AUDIO
    assert session.decoded_frames == 0
    taken: list[tuple[int, int]] = []
    session.add_pcm_tap(lambda pcm, rate, now: taken.append((pcm.size, rate)))
    session.receive_rtp(packet(2, 160, payload=ulaw_encode(tone)), 1.02)
    assert taken == [(160, 8000)] and session.decoded_frames == 1


def test_received_telephone_events_become_keys() -> None:
    session = pcmu_session()
    kinds = []
    for index, (_marker, _duration, payload) in enumerate(DtmfSender("#", duration_ms=100).packets()):
        kinds.append(session.receive_rtp(packet(index, 4000, pt=101, payload=payload), 1.0 + index * 0.02))
    assert set(kinds) == {PacketKind.EVENT}
    events = session.take_events()
    assert len(events) == 1 and isinstance(events[0], DtmfReceived) and events[0].digit == "#"


def test_latch_follows_the_source_and_relatches_after_silence() -> None:
    latch = Latch(relatch_after=1.0)
    latch.reset(("10.0.0.1", 4000))
    assert latch.destination == ("10.0.0.1", 4000)
    assert latch.admits(("192.0.2.7", 5555), 0.0)
    assert latch.heard(("192.0.2.7", 5555), 0.0)
    assert latch.destination == ("192.0.2.7", 5555)
    assert not latch.admits(("198.51.100.1", 9), 0.5)
    assert latch.admits(("192.0.2.7", 5555), 0.5) and not latch.heard(("192.0.2.7", 5555), 0.5)
    assert latch.admits(("198.51.100.1", 9), 1.6)
    latch.heard(("198.51.100.1", 9), 1.6)
    assert latch.destination == ("198.51.100.1", 9)


class _Target:
    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def deliver_frame(self, payload: bytes, now: float) -> None:
        self.frames.append(payload)


def test_transcoder_turns_48_khz_frames_into_pcmu_frames() -> None:
    target = _Target()
    transcoder = Transcoder(Codec.OPUS, Codec.PCMU, target)  # type: ignore[arg-type]
    tone = (np.sin(2 * np.pi * 500 * np.arange(960 * 5) / 48000) * 8000).astype(np.int16)
    for index in range(5):
        transcoder(tone[960 * index : 960 * (index + 1)], 48000, 1.0)
    assert len(target.frames) == 5 and all(len(f) == 160 for f in target.frames)
    transcoder(tone[:480], 48000, 1.1)  # a 10 ms Opus frame waits for the next
    assert len(target.frames) == 5
    assert transcoder.frames_encoded == 5
    assert OPUS_SILENCE not in target.frames
