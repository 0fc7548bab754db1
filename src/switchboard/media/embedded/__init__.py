"""The embedded media engine: ICE, DTLS-SRTP, SDES-SRTP and RTP in-process (aioice, pyOpenSSL, pylibsrtp)."""

from switchboard.media.embedded.engine import EmbeddedMediaEngine
from switchboard.media.embedded.leg import EmbeddedLeg
from switchboard.media.embedded.mixer import EmbeddedMixer
from switchboard.media.embedded.sdp import SdpError

__all__ = ["EmbeddedLeg", "EmbeddedMediaEngine", "EmbeddedMixer", "SdpError"]
