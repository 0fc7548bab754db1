"""`switchboard --help` and `switchboard emulator --help` name the subcommands that exist."""

from __future__ import annotations

import re
from pathlib import Path

from support.cli import run_cli


def test_emulator_help_lists_its_subcommands(tmp_path: Path) -> None:
    result = run_cli("emulator", "--help", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "{serve,call}" in result.stdout
    assert "place a scripted user call" in result.stdout


def test_emulator_subcommand_help_and_arguments_reach_the_emulator(tmp_path: Path) -> None:
    result = run_cli("emulator", "call", "--help", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "--dtmf" in result.stdout


def test_the_top_level_help_names_only_emulator_subcommands_that_exist(tmp_path: Path) -> None:
    top = run_cli("--help", cwd=tmp_path).stdout
    emulator = run_cli("emulator", "--help", cwd=tmp_path).stdout
    line = next(line for line in top.splitlines() if line.strip().startswith("emulator "))
    named = set(re.findall(r"\b(serve|call|run)\b", line))
    choices = re.search(r"\{([a-z,]+)\}", emulator)
    assert choices is not None, emulator
    existing = set(choices.group(1).split(","))

    assert named, line
    assert named <= existing, f"{line!r} names {named - existing}"


def test_unknown_arguments_to_other_commands_are_refused(tmp_path: Path) -> None:
    result = run_cli("serve", "--no-such-option", cwd=tmp_path)

    assert result.returncode == 2
    assert "unrecognized arguments: --no-such-option" in result.stderr
