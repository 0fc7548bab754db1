"""`switchboard serve` checks its database before it says it listens."""

from __future__ import annotations

from pathlib import Path

import httpx

from support.cli import cli_env, run_cli, started_cli
from support.platform import free_port

UNREACHABLE = "postgresql://nobody:hunter2hunter2@127.0.0.1:1/x"


def test_an_unreachable_database_is_named_in_one_line_and_the_server_does_not_start(tmp_path: Path) -> None:
    result = run_cli("serve", "--port", "0", cwd=tmp_path, env=cli_env(DATABASE_URL=UNREACHABLE))

    assert result.returncode == 1
    assert "listening" not in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) <= 2, result.stderr
    assert "cannot reach the database" in lines[0]
    assert "nobody" in lines[0] and "127.0.0.1:1/x" in lines[0]
    assert "hunter2" not in result.stderr + result.stdout


def test_a_reachable_database_is_migrated_and_shown_without_its_password(tmp_path: Path) -> None:
    port = free_port()
    with started_cli("serve", "--port", str(port), cwd=tmp_path) as serve:
        serve.wait_for_line(f"listening on http://127.0.0.1:{port}")
        database = serve.wait_for_line("database:")
        assert "sqlite+aiosqlite:///" in database
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
        assert serve.interrupt() == 0
    assert (tmp_path / "switchboard-data" / "switchboard.db").exists()
