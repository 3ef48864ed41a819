"""The stores under contract, built with a pinned clock and predictable ids.

Both backends then see the same times and ids, and a test moves time by hand
instead of sleeping.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from reelserve.catalog import get_model, parse_submit
from reelserve.jobs import ApiKey, Job, JobOrder, JobStore, Refusal, Submitted
from reelserve.jobs.redis_layout import remove_prefix
from reelserve.jobs.redis_store import RedisJobStore
from reelserve.jobs.sqlite import SqliteJobStore

REDIS_URL = "redis://127.0.0.1:6379/0"
RETENTION_S = 100.0
# Times a quarter-second apart from here are exact both as Python floats and in
# the 14 significant digits Redis' Lua writes, so both backends store the same.
START = 1_000_000.0
T2V = "kling-3-standard-text2video"


@dataclass
class PinnedClock:
    """The stores' clock in these tests: it moves only when a test moves it."""

    at: float = START

    def __call__(self) -> float:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += seconds


@dataclass
class CountingIds:
    """Job and voice ids in a predictable sequence (UUID-shaped, as in production)."""

    issued: int = 0

    def __call__(self) -> str:
        self.issued += 1
        return str(uuid.UUID(int=self.issued))


@dataclass
class StorePair:
    """One store per backend, sharing a clock and each with its own id sequence."""

    sqlite: SqliteJobStore
    redis: RedisJobStore
    clock: PinnedClock
    _cleanup: list[Callable[[], None]] = field(default_factory=list)

    @property
    def both(self) -> tuple[JobStore, JobStore]:
        return self.sqlite, self.redis

    def close(self) -> None:
        for step in self._cleanup:
            step()


def open_redis(clock: PinnedClock, retention_s: float = RETENTION_S,
               ids: Callable[[], str] | None = None) -> tuple[RedisJobStore, Callable[[], None]]:
    prefix = f"contract-{uuid.uuid4().hex[:12]}"
    store = RedisJobStore(REDIS_URL, retention_s=retention_s, prefix=prefix, clock=clock,
                          ids=ids or CountingIds())

    def remove() -> None:
        remove_prefix(store.redis, prefix)
        store.close()

    return store, remove


def open_pair(retention_s: float = RETENTION_S) -> StorePair:
    """Both backends side by side, for tests that compare them step by step."""
    clock = PinnedClock()
    folder = Path(tempfile.mkdtemp(prefix="contract-"))
    sqlite = SqliteJobStore(folder / "jobs.sqlite3", retention_s=retention_s, clock=clock,
                            ids=CountingIds())
    redis_store, remove = open_redis(clock, retention_s)

    def close_sqlite() -> None:
        sqlite.close()
        shutil.rmtree(folder, ignore_errors=True)

    return StorePair(sqlite, redis_store, clock, [close_sqlite, remove])


def order(key_id: int, price: int = 240, *, prompt: str = "a quiet harbour",
          idempotency_key: str | None = None, digest: str = "",
          webhook_url: str | None = None) -> JobOrder:
    """A text-to-video job of ``price`` millicredits for ``key_id``."""
    params = parse_submit(get_model(T2V), {"prompt": prompt, "duration": "3",
                                           "generate_audio": False})
    return JobOrder(key_id, params, price, webhook_url=webhook_url,
                    idempotency_key=idempotency_key, body_digest=digest)


def new_key(store: JobStore, credits: int = 1000, name: str = "k",
            models: tuple[str, ...] | None = None, prefix: str | None = None) -> ApiKey:
    """A key with a recognisable prefix; the hash only has to be unique."""
    shown = prefix or f"rs_{name}{uuid.uuid4().hex[:6]}"
    return store.create_key(f"hash-{shown}-{uuid.uuid4().hex}", shown, name=name,
                            credits=credits, models=models)


def submitted(outcome: Submitted | Refusal) -> Job:
    assert not isinstance(outcome, Exception), outcome
    return outcome[0]
