"""The SQLite job store on a real file: holds, group commit, leases, stale writes, retention."""

from __future__ import annotations

from pathlib import Path

import pytest

from reelserve.catalog import get_model, parse_submit
from reelserve.errors import InsufficientCredits, StaleAttempt
from reelserve.jobs import JobOrder, JobState
from reelserve.jobs.sqlite import SqliteJobStore
from reelserve.keys import issue_key

T2V = "kling-3-standard-text2video"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> SqliteJobStore:
    return SqliteJobStore(tmp_path / "jobs.sqlite3", retention_s=60, clock=clock)


def _order(key_id: int, price: int = 240) -> JobOrder:
    params = parse_submit(get_model(T2V), {"prompt": "p", "duration": "3",
                                           "generate_audio": False})
    return JobOrder(key_id, params, price)


def test_group_commit_refuses_only_the_orders_the_balance_cannot_cover(
        store: SqliteJobStore) -> None:
    key = issue_key(store, credits=400).record
    outcomes = store.submit_jobs([_order(key.id), _order(key.id), _order(key.id, price=20)])
    first, second, third = outcomes
    assert not isinstance(first, InsufficientCredits) and first[1] == 160
    assert isinstance(second, InsufficientCredits)
    assert not isinstance(third, InsufficientCredits) and third[1] == 140
    assert store.get_key(key.id).balance == 140
    assert store.ledger(first[0].id) == [("hold", 240)]
    assert store.get_job(first[0].id) is not None


def test_claim_complete_captures_once(store: SqliteJobStore) -> None:
    key = issue_key(store, credits=1000).record
    job, _ = store.submit_job(key.id, _order(key.id).params, 240)
    claimed = store.claim_next_job("w1", lease_s=10)
    assert claimed is not None and claimed.id == job.id and claimed.attempt == 1
    done = store.complete_job(job.id, 1, "out.mp4", {"engine": "x"})
    assert done.state is JobState.COMPLETED and done.metrics["cost"] == 0.24
    with pytest.raises(StaleAttempt):
        store.complete_job(job.id, 1, "again.mp4", {})
    assert store.ledger(job.id) == [("hold", 240), ("capture", 240)]
    assert store.get_key(key.id).balance == 760


def test_expired_lease_requeues_and_the_old_attempt_cannot_write(
        store: SqliteJobStore, clock: Clock) -> None:
    key = issue_key(store, credits=1000).record
    job, _ = store.submit_job(key.id, _order(key.id).params, 240)
    assert store.claim_next_job("w1", lease_s=5) is not None
    clock.now += 6
    assert store.recover_expired_leases(max_attempts=3) == 1
    again = store.claim_next_job("w2", lease_s=5)
    assert again is not None and again.attempt == 2
    with pytest.raises(StaleAttempt):
        store.renew_lease(job.id, 1, 5, 0.5)
    with pytest.raises(StaleAttempt):
        store.complete_job(job.id, 1, "late.mp4", {})
    store.complete_job(job.id, 2, "out.mp4", {})
    assert store.ledger(job.id) == [("hold", 240), ("capture", 240)]


def test_last_lost_attempt_fails_the_job_and_releases_the_hold(
        store: SqliteJobStore, clock: Clock) -> None:
    key = issue_key(store, credits=1000).record
    job, _ = store.submit_job(key.id, _order(key.id).params, 240)
    for _ in range(3):
        assert store.claim_next_job("w", lease_s=1) is not None
        clock.now += 2
        store.recover_expired_leases(max_attempts=3)
    failed = store.get_job(job.id)
    assert failed is not None and failed.state is JobState.FAILED
    assert failed.error == "failed after 3 attempts; last: worker lost (lease expired)"
    assert store.ledger(job.id) == [("hold", 240), ("release", 240)]
    assert store.get_key(key.id).balance == 1000


def test_queue_position_counts_the_jobs_ahead(store: SqliteJobStore) -> None:
    key = issue_key(store, credits=10_000).record
    jobs = [store.submit_job(key.id, _order(key.id).params, 240)[0] for _ in range(3)]
    assert [store.queue_position(job.id) for job in jobs] == [1, 2, 3]
    store.claim_next_job("w", lease_s=10)
    assert [store.queue_position(job.id) for job in jobs] == [None, 1, 2]


def test_sweep_removes_expired_jobs_and_reports_their_files(
        store: SqliteJobStore, clock: Clock) -> None:
    key = issue_key(store, credits=1000).record
    job, _ = store.submit_job(key.id, _order(key.id).params, 240)
    store.claim_next_job("w", lease_s=10)
    store.complete_job(job.id, 1, "out.mp4", {})
    clock.now += 59
    assert store.sweep_expired().expired_jobs == 0
    clock.now += 2
    assert store.get_job(job.id) is None  # expired jobs are gone before the sweep runs
    report = store.sweep_expired()
    assert report.expired_jobs == 1 and report.deleted_outputs == ("out.mp4",)


def test_hand_backs_do_not_count_against_max_attempts(store: SqliteJobStore) -> None:
    key = issue_key(store, credits=1000).record
    job, _ = store.submit_job(key.id, _order(key.id).params, 240)
    for attempt in (1, 2, 3):
        assert store.claim_next_job("w", lease_s=10) is not None
        requeued = store.abandon_attempt(job.id, attempt, "shutdown", 1, counts=False)
        assert requeued.state is JobState.QUEUED
    assert store.claim_next_job("w", lease_s=10) is not None
    failed = store.abandon_attempt(job.id, 4, "engine died", 1)
    assert failed.state is JobState.FAILED
    assert failed.error == "failed after 1 attempts; last: engine died"


def test_queue_stats_and_worker_heartbeats(store: SqliteJobStore, clock: Clock) -> None:
    key = issue_key(store, credits=10_000).record
    for _ in range(3):
        store.submit_job(key.id, _order(key.id).params, 240)
    clock.now += 5
    store.claim_next_job("w", lease_s=10)
    stats = store.queue_stats()
    assert stats.depth == 2 and stats.oldest_age_s == 5
    assert stats.by_state == {"QUEUED": 2, "PROCESSING": 1}
    store.heartbeat_worker("w", "preview", None)
    clock.now += 1
    store.heartbeat_worker("w", "preview", "job-1")
    [worker] = store.list_workers()
    assert (worker.id, worker.job_id, worker.last_seen - worker.started_at) == ("w", "job-1", 1)
    store.remove_worker("w")
    assert store.list_workers() == []
