"""Queue positions deep in a long queue: right on both backends, bounded work on SQLite."""

from __future__ import annotations

from pathlib import Path

from reelserve.jobs import ApiKey, JobStore
from reelserve.jobs.sqlite import SqliteJobStore
from reelserve.jobs.sqlite_ranks import EXACT_PLACES
from store_contract.stores import RETENTION_S, new_key, order, submitted

DEPTH = EXACT_PLACES + 300


def _queue(store: JobStore, count: int, key: ApiKey | None = None) -> list[str]:
    key = key or new_key(store, credits=240 * (DEPTH + 10))
    ids: list[str] = []
    for start in range(0, count, 200):
        outcomes = store.submit_jobs([order(key.id) for _ in range(min(200, count - start))])
        ids += [submitted(outcome).id for outcome in outcomes]
    return ids


def test_places_past_the_exact_count_are_right(store: JobStore) -> None:
    ids = _queue(store, DEPTH)
    for place in (1, EXACT_PLACES - 1, EXACT_PLACES, EXACT_PLACES + 1, DEPTH):
        assert store.queue_position(ids[place - 1]) == place
    store.cancel_job(ids[0])
    store.cancel_job(ids[EXACT_PLACES + 10])
    # The canceled jobs leave the queue at once: None for them, every later place moves up.
    assert store.queue_position(ids[0]) is None
    assert store.queue_position(ids[EXACT_PLACES + 10]) is None


def test_sqlite_reads_deep_places_from_one_scan_at_most_max_age_old(tmp_path: Path) -> None:
    store = SqliteJobStore(tmp_path / "jobs.sqlite3", retention_s=RETENTION_S)
    try:
        ids = _queue(store, DEPTH)
        scans = []
        deep = store._deep_places
        real_scan = deep._scan
        deep._scan = lambda db, fair: (scans.append(1), real_scan(db, fair))[1]  # type: ignore[method-assign]
        deep.max_age_s = 3600.0  # one scan serves every poll until it is this old
        places = [store.queue_position(job_id) for job_id in ids[EXACT_PLACES:]]
        assert places == list(range(EXACT_PLACES + 1, DEPTH + 1))
        assert len(scans) == 1
        assert store.queue_position(ids[5]) == 6 and len(scans) == 1  # exact, no scan
        # A job queued after the scan is not in it: it is looked for again, once.
        later = _queue(store, 1, store.list_keys()[0])[0]
        deep._taken_at -= 1.0
        assert store.queue_position(later) == DEPTH + 1 and len(scans) == 2
        # Within max_age a deep place may lag the queue; past it, it is right again.
        store.cancel_job(ids[0])
        assert store.queue_position(ids[-1]) == DEPTH
        deep.max_age_s = 0.0
        assert store.queue_position(ids[-1]) == DEPTH - 1
    finally:
        store.close()
