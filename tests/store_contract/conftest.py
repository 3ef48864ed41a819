"""Fixtures of the store contract: every test here runs on SQLite and on the real Redis.

``store`` is a fresh store of one backend on the pinned ``clock`` with predictable
ids; ``stores.open_pair`` gives one store of each for the state machine. A new
store feature starts as a test here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reelserve.jobs import JobStore
from reelserve.jobs.sqlite import SqliteJobStore
from store_contract.stores import RETENTION_S, CountingIds, PinnedClock, open_redis


@pytest.fixture
def clock() -> PinnedClock:
    return PinnedClock()


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path,
          clock: PinnedClock) -> Iterator[JobStore]:
    """A fresh store on each backend, on the pinned ``clock``."""
    if request.param == "sqlite":
        sqlite = SqliteJobStore(tmp_path / "jobs.sqlite3", retention_s=RETENTION_S,
                                clock=clock, ids=CountingIds())
        yield sqlite
        sqlite.close()
        return
    request.getfixturevalue("redis_url")
    redis_store, remove = open_redis(clock)
    yield redis_store
    remove()
