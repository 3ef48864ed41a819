"""Redis as the system of record: its settings are read whenever a store opens.

Each test starts its own ``redis-server`` on a free loopback port with the
setting under test (the shared Redis at 6379 is left alone).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis

from reelserve.errors import RedisUnsafe
from reelserve.jobs.backends import open_store
from reelserve.jobs.redis_store import RedisJobStore
from reelserve.settings import Settings

from conftest import free_port, make_service, needs_outside_part, process_env

StartRedis = Callable[..., str]


@pytest.fixture
def start_redis(tmp_path: Path) -> Iterator[StartRedis]:
    """Start a redis-server with extra config arguments; answers its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        needs_outside_part("redis-server is not installed (apt-get install redis-server)")
    started: list[subprocess.Popen[bytes]] = []

    def start(*config: str) -> str:
        port = free_port()
        folder = tmp_path / f"redis-{port}"
        folder.mkdir()
        server = subprocess.Popen(
            [str(binary), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
             "--save", "", "--appendonly", "no", *config],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(server)
        client = redis.Redis(port=port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.05)
        client.close()
        return f"redis://127.0.0.1:{port}/0"

    yield start
    for server in started:
        server.terminate()
        server.wait(10)


def _open(url: str, *, ephemeral: bool = False) -> RedisJobStore:
    settings = Settings(store=url, redis_prefix="t", redis_ephemeral=ephemeral)
    store = open_store(settings.store_section)
    assert isinstance(store, RedisJobStore)
    return store


@pytest.mark.parametrize("policy", ["allkeys-lru", "volatile-ttl", "allkeys-random"])
def test_an_evicting_policy_is_refused_naming_the_setting_and_the_fix(
        start_redis: StartRedis, policy: str) -> None:
    url = start_redis("--maxmemory-policy", policy)
    with pytest.raises(RedisUnsafe) as refused:
        _open(url, ephemeral=True)
    message = refused.value.message
    assert f"maxmemory-policy {policy}" in message and "set maxmemory-policy noeviction" in message
    assert "\n" not in message
    client = redis.Redis.from_url(url)
    assert client.keys("*") == []  # refused before writing anything
    client.close()


def test_no_persistence_is_a_warning_unless_accepted_on_purpose(
        start_redis: StartRedis, caplog: pytest.LogCaptureFixture) -> None:
    url = start_redis()
    store = _open(url)
    [warning] = store.durability_warnings
    assert "persistence is off" in warning and "appendonly yes" in warning
    assert any("persistence is off" in r.getMessage() for r in caplog.records
               if r.levelname == "WARNING")
    store.close()
    assert _open(url, ephemeral=True).durability_warnings == ()


def test_rdb_snapshots_only_is_a_warning(start_redis: StartRedis) -> None:
    url = start_redis("--save", "3600 1")
    [warning] = _open(url).durability_warnings
    assert "RDB snapshots only" in warning and "3600 1" in warning


def test_aof_gives_no_warning(start_redis: StartRedis) -> None:
    url = start_redis("--appendonly", "yes")
    assert _open(url).durability_warnings == ()


def test_a_redis_that_refuses_config_get_is_a_warning_not_a_crash(
        start_redis: StartRedis) -> None:
    url = start_redis("--rename-command", "CONFIG", "")
    store = _open(url, ephemeral=True)
    [warning] = store.durability_warnings
    assert "CONFIG GET refused" in warning and "noeviction" in warning
    # the store works all the same
    key = store.create_key("h", "rs_abcdefgh", name="", credits=5, models=None)
    assert store.get_key(key.id).balance == 5


def test_serve_refuses_an_evicting_redis_in_one_line(start_redis: StartRedis,
                                                     tmp_path: Path) -> None:
    url = start_redis("--maxmemory-policy", "allkeys-lru")
    env = {**process_env(tmp_path / "data", store=url), "COLUMNS": "1000"}
    for command in (["serve", "--port", "1"], ["worker"], ["keys", "list"]):
        done = subprocess.run([sys.executable, "-m", "reelserve", *command], env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 1, command
        lines = (done.stdout + done.stderr).strip().splitlines()
        assert len(lines) == 1 and "maxmemory-policy allkeys-lru" in lines[0], lines


def test_readyz_and_metrics_carry_the_persistence_warning(start_redis: StartRedis,
                                                          tmp_path: Path) -> None:
    url = start_redis()
    service = make_service(tmp_path, store=url, redis_prefix="svc")
    try:
        ready = httpx.get(f"{service.base_url}/readyz", timeout=10).json()
        [warning] = ready["warnings"]
        assert "persistence is off" in warning
        metrics = httpx.get(f"{service.base_url}/metrics", timeout=10).text
        assert "reelserve_store_durability_warnings 1.0" in metrics
        # and every command that opens the store says it in its log
        env = {**process_env(service.data_dir, **service.settings), "COLUMNS": "1000"}
        status = subprocess.run([sys.executable, "-m", "reelserve", "status"], env=env,
                                capture_output=True, text=True, timeout=60, check=True)
        assert "persistence is off" in status.stderr
    finally:
        service.stop()
