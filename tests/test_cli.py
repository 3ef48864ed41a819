"""The `reelserve keys` commands against a real data dir; keys are stored only as hashes."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from conftest import T2V, free_port, process_env


def _cli(data_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reelserve", *args],
                          env=process_env(data_dir), capture_output=True, text=True, check=check)


def test_keys_create_list_add_credits_revoke(tmp_path: Path) -> None:
    data = tmp_path / "data"
    created = _cli(data, "keys", "create", "--credits", "7.5", "--models", T2V, "--name", "ci")
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("rs_") and " " not in key
    prefix = key[:11]

    listed = _cli(data, "keys", "list").stdout
    assert prefix in listed and "7.500" in listed and T2V in listed and "active" in listed
    assert key not in listed

    assert "10.000" in _cli(data, "keys", "add-credits", prefix, "2.5").stdout
    assert "10.000" in _cli(data, "keys", "list").stdout

    _cli(data, "keys", "revoke", prefix)
    assert "revoked" in _cli(data, "keys", "list").stdout


def test_unknown_prefix_is_a_clear_error(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _cli(data, "keys", "create")
    result = _cli(data, "keys", "revoke", "rs_nothere", check=False)
    assert result.returncode != 0
    assert "rs_nothere" in result.stdout + result.stderr


def test_the_secret_is_never_stored(tmp_path: Path) -> None:
    data = tmp_path / "data"
    key = _cli(data, "keys", "create").stdout.strip().splitlines()[-1]
    database = data / "reelserve.sqlite3"
    assert key.encode() not in database.read_bytes()
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT * FROM keys").fetchall()
    assert rows and all(key not in map(str, row) for row in rows)


def test_unknown_engine_makes_the_worker_exit_with_a_message(tmp_path: Path) -> None:
    result = _cli(tmp_path / "data", "worker", "--engine", "nonesuch", check=False)
    assert result.returncode == 3
    assert "nonesuch" in result.stdout + result.stderr


def test_serve_stops_with_exit_3_when_no_worker_can_load_the_engine(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "reelserve", "serve", "--engine", "nonesuch", "--workers", "2"],
        env=process_env(tmp_path / "data", port=free_port()), capture_output=True, text=True,
        timeout=60)
    assert result.returncode == 3
    output = result.stdout + result.stderr
    assert "unknown engine 'nonesuch'" in output
    assert "cannot load in any worker" in output
