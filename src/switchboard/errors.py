"""The base of every error the platform raises on purpose (below every layer, so all can use it)."""

from __future__ import annotations


class SwitchboardError(Exception):
    """Base of every error the platform raises on purpose; `status_hint` is the HTTP status for it."""

    status_hint = 400


class MediaError(SwitchboardError):
    """The media engine could not do what was asked (bad SDP, undecodable audio, TTS failure, ...)."""

    status_hint = 500
