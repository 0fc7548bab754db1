"""What the README tells a newcomer agrees with the code and the repository."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from support.databases import PG_ADMIN
from switchboard.config import ConfigError, load_settings

ROOT = Path(__file__).resolve().parents[3]
README = (ROOT / "README.md").read_text("utf-8")


def test_the_two_set_up_commands_exist_and_run() -> None:
    for command in ("./scripts/demo", "./scripts/test"):
        assert f"{command} " in README
        assert os.access(ROOT / command, os.X_OK), command


def test_the_readme_says_where_the_postgresql_tests_look_and_that_they_skip() -> None:
    url = urlsplit(PG_ADMIN)
    section = README[README.index("PostgreSQL need") :][:600]
    assert f"`{url.hostname}:{url.port}`" in section
    assert f"`{url.username}`" in section and "trust" in section
    assert f"`{url.path.lstrip('/')}`" in section
    assert "skipped" in section


def test_the_readmes_switchboard_api_keys_example_is_accepted() -> None:
    match = re.search(r"`SWITCHBOARD_API_KEYS=([^`]+)`", README)
    assert match is not None, "the README shows no SWITCHBOARD_API_KEYS example"
    settings = load_settings(environ={"SWITCHBOARD_API_KEYS": match.group(1)})
    assert settings.api.keys == match.group(1).split(",")
    assert "comma-separated" in README and "at least 16 characters" in README
    with pytest.raises(ConfigError):
        load_settings(environ={"SWITCHBOARD_API_KEYS": "x" * 15})


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_the_demos_data_directory_is_ignored_by_git() -> None:
    inside = subprocess.run(
        ["git", "rev-parse", "--is-inside-work-tree"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if inside.stdout.strip() != "true":
        pytest.skip("not a git checkout")
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "switchboard-data/recordings/call.wav"], cwd=ROOT, check=False
    )
    assert ignored.returncode == 0, "switchboard-data/ is not in .gitignore"
