"""Schema versions: SQLite's ``user_version`` and Redis' ``layout-version``, migrated in order.

A store written by a newer release is refused naming both versions; a corrupt
SQLite file is a one-line error naming the file, at startup of ``serve`` too.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from reelserve.errors import StoreTooNew, StoreUnreadable
from reelserve.jobs import JobState
from reelserve.jobs.redis_layout import LAYOUT_VERSION, layout_version, remove_prefix
from reelserve.jobs.redis_store import RedisJobStore
from reelserve.jobs.sqlite import SqliteJobStore
from reelserve.jobs.sqlite_migrations import SCHEMA_VERSION
from store_contract.stores import REDIS_URL, new_key, order, submitted

from conftest import process_env

FIXTURE_DB = Path(__file__).parent.parent / "fixtures/data-0.1.0/data/reelserve.sqlite3"


def _user_version(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("PRAGMA user_version").fetchone()[0])
    finally:
        db.close()


def test_a_new_sqlite_file_starts_at_the_current_version(tmp_path: Path) -> None:
    SqliteJobStore(tmp_path / "s.sqlite3", retention_s=60).close()
    assert _user_version(tmp_path / "s.sqlite3") == SCHEMA_VERSION == 3  # 3: fair scheduling


def test_a_0_1_0_file_is_migrated_in_place_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "reelserve.sqlite3"
    shutil.copy(FIXTURE_DB, path)
    assert _user_version(path) == 0
    store = SqliteJobStore(path, retention_s=60)
    assert _user_version(path) == SCHEMA_VERSION
    assert [key.name for key in store.list_keys()] == ["first", "second", "revoked"]
    indexes = {row[0] for row in store._conn().execute(
        "SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "webhooks_by_job" in indexes
    store.close()
    SqliteJobStore(path, retention_s=60).close()  # opening again changes nothing
    assert _user_version(path) == SCHEMA_VERSION


def test_a_file_from_before_0_1_0_gains_the_columns_added_since(tmp_path: Path) -> None:
    """``CREATE TABLE IF NOT EXISTS`` never added columns; the baseline migration does."""
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE keys (id INTEGER PRIMARY KEY, prefix TEXT NOT NULL UNIQUE,
            hash TEXT NOT NULL UNIQUE, name TEXT NOT NULL, models TEXT,
            balance INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL);
        CREATE TABLE jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
            key_id INTEGER NOT NULL, params TEXT NOT NULL, state TEXT NOT NULL,
            price INTEGER NOT NULL, hold TEXT NOT NULL, attempt INTEGER NOT NULL DEFAULT 0,
            worker_id TEXT, lease_expires_at REAL, progress REAL NOT NULL DEFAULT 0,
            output_key TEXT, error TEXT, error_status INTEGER, created_at REAL NOT NULL,
            started_at REAL, completed_at REAL, expires_at REAL);
        INSERT INTO keys (prefix, hash, name, balance, created_at)
            VALUES ('rs_old00000', 'h', 'old', 5000, 1.0);
    """)
    db.close()
    store = SqliteJobStore(path, retention_s=60)
    assert store.get_key(1).balance == 5000
    assert store.webhook_secret(1, "whsec_new") == "whsec_new"
    job = submitted(store.submit_jobs([order(1, webhook_url="https://h.example/")])[0])
    claimed = store.claim_next_job("w", 30)
    assert claimed is not None
    store.complete_job(job.id, claimed.attempt, "o.mp4", {})
    done = store.get_job(job.id)
    assert done is not None and done.state is JobState.COMPLETED and not done.canceled
    assert [d.id for d in store.claim_due_webhooks(5, 5)] == [f"msg_{job.id}"]
    store.close()


def test_a_sqlite_file_from_a_newer_release_is_refused_naming_both_versions(
        tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    SqliteJobStore(path, retention_s=60).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    db.close()
    with pytest.raises(StoreTooNew) as refused:
        SqliteJobStore(path, retention_s=60)
    assert str(path) in refused.value.message
    assert f"version {SCHEMA_VERSION + 5}" in refused.value.message
    assert f"up to {SCHEMA_VERSION}" in refused.value.message


def test_a_corrupt_sqlite_file_is_one_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.sqlite3"
    path.write_bytes(b"this is not a database, only some bytes " * 200)
    with pytest.raises(StoreUnreadable, match=r"corrupt\.sqlite3"):
        SqliteJobStore(path, retention_s=60)


def test_serve_on_a_corrupt_data_dir_exits_with_one_line_naming_the_file(
        tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "reelserve.sqlite3").write_bytes(b"\x00garbage" * 1000)
    for command in (["serve", "--port", "1"], ["keys", "list"]):
        # wide enough that the console does not wrap the line
        done = subprocess.run([sys.executable, "-m", "reelserve", *command],
                              env={**process_env(data_dir), "COLUMNS": "1000"},
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 1
        output = (done.stdout + done.stderr).strip()
        assert "Traceback" not in output
        assert output.count("\n") == 0, output
        assert "reelserve.sqlite3" in output and "cannot be opened" in output


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    prefix = f"layout-{uuid.uuid4().hex[:12]}"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    remove_prefix(client, prefix)
    client.close()


def test_a_redis_layout_gets_its_version_and_keeps_0_1_0_data(redis_prefix: str) -> None:
    # A 0.1.0 layout: data, no version key.
    old = RedisJobStore(REDIS_URL, retention_s=60, prefix=redis_prefix, migrate=False)
    key = new_key(old, credits=900)
    assert layout_version(old.redis, redis_prefix) == 0
    store = RedisJobStore(REDIS_URL, retention_s=60, prefix=redis_prefix)
    assert layout_version(store.redis, redis_prefix) == LAYOUT_VERSION == 2  # 2: fair scheduling
    assert store.get_key(key.id).balance == 900
    assert store.migrate_layout("here") == LAYOUT_VERSION  # again: nothing to do
    old.close()
    store.close()


def test_a_redis_layout_from_a_newer_release_is_refused_naming_both_versions(
        redis_prefix: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    client.set(f"{redis_prefix}:layout-version", LAYOUT_VERSION + 1)
    client.close()
    with pytest.raises(StoreTooNew) as refused:
        RedisJobStore(REDIS_URL, retention_s=60, prefix=redis_prefix)
    assert redis_prefix in refused.value.message
    assert f"version {LAYOUT_VERSION + 1}" in refused.value.message
    assert f"up to {LAYOUT_VERSION}" in refused.value.message


def test_removing_a_prefix_takes_all_its_keys_and_nothing_else(redis_prefix: str) -> None:
    neighbour = f"{redis_prefix}x"  # shares the text but not the ':' that ends a prefix
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.mset({f"{redis_prefix}:k{i}": i for i in range(2500)})  # more than a batch
        client.set(neighbour + ":kept", 1)
        client.set(redis_prefix, 1)
        assert remove_prefix(client, redis_prefix, batch=1000) == 2500
        assert not list(client.scan_iter(match=f"{redis_prefix}:*", count=1000))
        assert client.get(neighbour + ":kept") == b"1" and client.get(redis_prefix) == b"1"
    finally:
        client.delete(neighbour + ":kept", redis_prefix)
        client.close()
