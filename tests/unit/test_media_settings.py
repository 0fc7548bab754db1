"""`[media] max_prompt_seconds` is validated and reaches the embedded engine's prompt cache."""

from pathlib import Path

import pytest

from switchboard.config import ConfigError, load_settings
from switchboard.media.embedded import EmbeddedMediaEngine
from switchboard.server import build_media


def test_max_prompt_seconds_reaches_the_engine(tmp_path: Path) -> None:
    assert load_settings(environ={}).media.max_prompt_seconds == 600
    config = tmp_path / "switchboard.toml"
    config.write_text("[media]\nmax_prompt_seconds = 30\n")
    engine = build_media(load_settings(config, environ={}))
    assert isinstance(engine, EmbeddedMediaEngine) and engine.frame_cache.max_prompt_seconds == 30


def test_max_prompt_seconds_must_be_positive(tmp_path: Path) -> None:
    config = tmp_path / "switchboard.toml"
    config.write_text("[media]\nmax_prompt_seconds = 0\n")
    with pytest.raises(ConfigError, match=r"media\.max_prompt_seconds: .*greater than 0"):
        load_settings(config, environ={})
