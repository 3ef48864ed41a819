"""Commands that read a store refuse a folder without one, instead of reporting emptiness.

Run through the real `reelserve` binary, from a folder with no ``reelserve-data``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cli_binary import reelserve
from conftest import Service, make_service


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    svc = make_service(tmp_path_factory.mktemp("status"))
    yield svc
    svc.stop()


@pytest.mark.parametrize("args", [("status",), ("keys", "list"), ("keys", "revoke", "rs_abc"),
                                  ("keys", "add-credits", "rs_abc", "1")])
def test_reading_commands_refuse_a_folder_without_a_store(tmp_path: Path,
                                                          args: tuple[str, ...]) -> None:
    done = reelserve(*args, cwd=tmp_path)
    assert done.returncode == 1
    message = done.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert "no reelserve store at reelserve-data/reelserve.sqlite3" in message
    assert "--data-dir" in message and "REELSERVE_DATA_DIR" in message
    assert ("--server URL" in message) == (args == ("status",))
    assert not (tmp_path / "reelserve-data").exists()  # nothing was created


def test_reelserve_data_dir_pointing_nowhere_is_refused_too(tmp_path: Path) -> None:
    done = reelserve("status", data_dir=tmp_path / "elsewhere")
    assert done.returncode == 1 and str(tmp_path / "elsewhere") in done.stderr
    assert not (tmp_path / "elsewhere").exists()


def test_status_and_keys_list_read_the_servers_store(running: Service) -> None:
    status = reelserve("status", data_dir=running.data_dir)
    assert status.returncode == 0, status.stderr
    assert "alive" in status.stdout and "QUEUED" in status.stdout
    keys = reelserve("keys", "list", data_dir=running.data_dir)
    assert keys.returncode == 0 and running.api_key[:11] in keys.stdout


def test_status_server_url_asks_the_running_server(running: Service, tmp_path: Path) -> None:
    with running.client() as client:
        assert client.post("/v2/kling-3-standard-text2video",
                           json={"prompt": "a boat", "duration": "3"}).status_code == 200
    done = reelserve("status", "--server", running.base_url, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "queue:" in done.stdout and "server: ready" in done.stdout
    assert not (tmp_path / "reelserve-data").exists()


def test_status_server_url_that_does_not_answer_exits_5(tmp_path: Path) -> None:
    from conftest import free_port

    done = reelserve("status", "--server", f"http://127.0.0.1:{free_port()}", cwd=tmp_path)
    assert done.returncode == 5 and "cannot reach" in done.stderr
