"""Both job stores, the same tests: a real SQLite file and the real Redis at 127.0.0.1:6379.

Holds, group commit, leases, stale writes, hand-backs, retention. Time passes for
real (short leases and retention), since the Redis store reads Redis' own clock.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reelserve.catalog import get_model, parse_submit
from reelserve.errors import (
    Conflict,
    IdempotencyMismatch,
    InsufficientCredits,
    RequestNotFound,
    StaleAttempt,
)
from reelserve.jobs import JobOrder, JobState, JobStore, Submitted
from reelserve.jobs.redis_layout import remove_prefix
from reelserve.jobs.redis_store import RedisJobStore
from reelserve.jobs.sqlite import SqliteJobStore
from reelserve.keys import issue_key

T2V = "kling-3-standard-text2video"


@pytest.fixture(params=["sqlite", "redis"])
def make_store(request: pytest.FixtureRequest,
               tmp_path: Path) -> Iterator[Callable[[float], JobStore]]:
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else ""
    opened: list[JobStore] = []
    prefix = f"test-{uuid.uuid4().hex[:12]}"

    def make(retention_s: float = 60) -> JobStore:
        store: JobStore
        if request.param == "sqlite":
            store = SqliteJobStore(tmp_path / "jobs.sqlite3", retention_s=retention_s)
        else:
            store = RedisJobStore(redis_url, retention_s=retention_s, prefix=prefix)
        opened.append(store)
        return store

    yield make
    for store in opened:
        if isinstance(store, RedisJobStore):
            remove_prefix(store.redis, prefix)
        store.close()


@pytest.fixture
def store(make_store: Callable[[float], JobStore]) -> JobStore:
    return make_store(60)


def _submit(store: JobStore, key_id: int) -> Submitted:
    """One 240-millicredit job for ``key_id``, which must be accepted."""
    [outcome] = store.submit_jobs([_order(key_id)])
    assert not isinstance(outcome, InsufficientCredits | IdempotencyMismatch), outcome
    return outcome


def _order(key_id: int, price: int = 240) -> JobOrder:
    params = parse_submit(get_model(T2V), {"prompt": "p", "duration": "3",
                                           "generate_audio": False})
    return JobOrder(key_id, params, price)


def test_group_commit_refuses_only_the_orders_the_balance_cannot_cover(
        store: JobStore) -> None:
    key = issue_key(store, credits=400).record
    outcomes = store.submit_jobs([_order(key.id), _order(key.id), _order(key.id, price=20)])
    first, second, third = outcomes
    assert not isinstance(first, InsufficientCredits) and first[1] == 160
    assert isinstance(second, InsufficientCredits)
    assert not isinstance(third, InsufficientCredits) and third[1] == 140
    assert store.get_key(key.id).balance == 140
    assert store.ledger(first[0].id) == [("hold", 240)]
    assert store.get_job(first[0].id) is not None


def test_claim_complete_captures_once(store: JobStore) -> None:
    key = issue_key(store, credits=1000).record
    job, _ = _submit(store, key.id)
    claimed = store.claim_next_job("w1", lease_s=10)
    assert claimed is not None and claimed.id == job.id and claimed.attempt == 1
    done = store.complete_job(job.id, 1, "out.mp4", {"engine": "x"})
    assert done.state is JobState.COMPLETED and done.metrics["cost"] == 0.24
    with pytest.raises(StaleAttempt):
        store.complete_job(job.id, 1, "again.mp4", {})
    assert store.ledger(job.id) == [("hold", 240), ("capture", 240)]
    assert store.get_key(key.id).balance == 760


def test_expired_lease_requeues_and_the_old_attempt_cannot_write(store: JobStore) -> None:
    key = issue_key(store, credits=1000).record
    job, _ = _submit(store, key.id)
    assert store.claim_next_job("w1", lease_s=0.2) is not None
    assert store.recover_expired_leases(max_attempts=3) == 0
    time.sleep(0.3)
    assert store.recover_expired_leases(max_attempts=3) == 1
    again = store.claim_next_job("w2", lease_s=5)
    assert again is not None and again.attempt == 2
    with pytest.raises(StaleAttempt):
        store.renew_lease(job.id, 1, 5, 0.5)
    with pytest.raises(StaleAttempt):
        store.complete_job(job.id, 1, "late.mp4", {})
    store.complete_job(job.id, 2, "out.mp4", {})
    assert store.ledger(job.id) == [("hold", 240), ("capture", 240)]


def test_last_lost_attempt_fails_the_job_and_releases_the_hold(store: JobStore) -> None:
    key = issue_key(store, credits=1000).record
    job, _ = _submit(store, key.id)
    for _ in range(3):
        assert store.claim_next_job("w", lease_s=0.05) is not None
        time.sleep(0.1)
        store.recover_expired_leases(max_attempts=3)
    failed = store.get_job(job.id)
    assert failed is not None and failed.state is JobState.FAILED
    assert failed.error == "failed after 3 attempts; last: worker lost (lease expired)"
    assert store.ledger(job.id) == [("hold", 240), ("release", 240)]
    assert store.get_key(key.id).balance == 1000


def test_queue_position_counts_the_jobs_ahead(store: JobStore) -> None:
    key = issue_key(store, credits=10_000).record
    jobs = [_submit(store, key.id)[0] for _ in range(3)]
    assert [store.queue_position(job.id) for job in jobs] == [1, 2, 3]
    store.claim_next_job("w", lease_s=10)
    assert [store.queue_position(job.id) for job in jobs] == [None, 1, 2]


def test_sweep_removes_expired_jobs_and_reports_their_files(
        make_store: Callable[[float], JobStore]) -> None:
    store = make_store(0.5)
    key = issue_key(store, credits=1000).record
    job, _ = _submit(store, key.id)
    store.claim_next_job("w", lease_s=10)
    store.complete_job(job.id, 1, "out.mp4", {})
    assert store.sweep_expired().expired_jobs == 0
    assert store.get_job(job.id) is not None
    time.sleep(0.6)
    assert store.get_job(job.id) is None  # expired jobs are gone before the sweep runs
    report = store.sweep_expired()
    assert report.expired_jobs == 1 and report.deleted_outputs == ("out.mp4",)


def test_hand_backs_do_not_count_against_max_attempts(store: JobStore) -> None:
    key = issue_key(store, credits=1000).record
    job, _ = _submit(store, key.id)
    for attempt in (1, 2, 3):
        assert store.claim_next_job("w", lease_s=10) is not None
        requeued = store.abandon_attempt(job.id, attempt, "shutdown", 1, counts=False)
        assert requeued.state is JobState.QUEUED
    assert store.claim_next_job("w", lease_s=10) is not None
    failed = store.abandon_attempt(job.id, 4, "engine died", 1)
    assert failed.state is JobState.FAILED
    assert failed.error == "failed after 1 attempts; last: engine died"


def test_queue_stats_and_worker_heartbeats(store: JobStore) -> None:
    key = issue_key(store, credits=10_000).record
    for _ in range(3):
        _submit(store, key.id)
    time.sleep(0.2)
    store.claim_next_job("w", lease_s=10)
    stats = store.queue_stats()
    assert stats.depth == 2 and 0.2 <= stats.oldest_age_s < 30
    assert stats.by_state == {"QUEUED": 2, "PROCESSING": 1}
    store.heartbeat_worker("w", "preview", None)
    time.sleep(0.1)
    store.heartbeat_worker("w", "preview", "job-1")
    [worker] = store.list_workers()
    assert (worker.id, worker.job_id) == ("w", "job-1")
    assert worker.last_seen - worker.started_at >= 0.1
    store.remove_worker("w")
    assert store.list_workers() == []


def test_cancel_releases_the_hold_and_stops_the_attempt(store: JobStore) -> None:
    key = issue_key(store, credits=1000).record
    queued, _ = _submit(store, key.id)
    running, _ = _submit(store, key.id)
    store.claim_next_job("w", lease_s=10)  # takes `queued`, the first in line
    assert store.attempt_is_current(queued.id, 1)
    canceled = store.cancel_job(queued.id)
    assert (canceled.state, canceled.error, canceled.canceled) == (JobState.FAILED, "canceled",
                                                                   True)
    assert not store.attempt_is_current(queued.id, 1)
    with pytest.raises(StaleAttempt):
        store.complete_job(queued.id, 1, "late.mp4", {})
    store.cancel_job(running.id)  # still QUEUED: it will never run
    assert store.claim_next_job("w", lease_s=10) is None
    with pytest.raises(Conflict):
        store.cancel_job(running.id)
    with pytest.raises(RequestNotFound):
        store.cancel_job("no-such-job")
    assert store.ledger(queued.id) == [("hold", 240), ("release", 240)]
    assert store.get_key(key.id).balance == 1000
    assert store.queue_stats().by_state == {"FAILED": 2}


def test_idempotent_submits_answer_the_same_job_and_hold_once(store: JobStore) -> None:
    key = issue_key(store, credits=1000).record
    params = _order(key.id).params
    order = JobOrder(key.id, params, 240, idempotency_key="abc", body_digest="d1")
    first, again, other = store.submit_jobs([order, order, JobOrder(
        key.id, params, 240, idempotency_key="abc", body_digest="d2")])
    assert not isinstance(first, InsufficientCredits | IdempotencyMismatch)
    assert not isinstance(again, InsufficientCredits | IdempotencyMismatch)
    assert again[0].id == first[0].id and again[1] == 760
    assert isinstance(other, IdempotencyMismatch)
    [later] = store.submit_jobs([order])
    assert not isinstance(later, InsufficientCredits | IdempotencyMismatch)
    assert later[0].id == first[0].id
    assert store.get_key(key.id).balance == 760


def test_a_finished_job_with_a_webhook_queues_one_delivery(store: JobStore) -> None:
    key = issue_key(store, credits=1000).record
    [submitted] = store.submit_jobs([JobOrder(key.id, _order(key.id).params, 240,
                                              webhook_url="http://127.0.0.1:9/hook")])
    assert not isinstance(submitted, InsufficientCredits | IdempotencyMismatch)
    job = submitted[0]
    assert store.claim_due_webhooks(10, 30) == []
    store.claim_next_job("w", lease_s=10)
    store.complete_job(job.id, 1, "out.mp4", {})
    [delivery] = store.claim_due_webhooks(10, 30)
    assert (delivery.job_id, delivery.url, delivery.attempts) == (job.id, "http://127.0.0.1:9/hook",
                                                                  0)
    assert delivery.event["status"] == "COMPLETED" and delivery.event["output_key"] == "out.mp4"
    assert store.claim_due_webhooks(10, 30) == []  # leased to this sender
    store.record_webhook_attempt(delivery.id, "HTTP 500", time.time() - 1, delivered=False)
    [again] = store.claim_due_webhooks(10, 30)
    assert again.attempts == 1
    store.record_webhook_attempt(again.id, "HTTP 204", None, delivered=True)
    assert store.claim_due_webhooks(10, 30) == []
    log = store.webhook_log(job.id)
    assert [entry["outcome"] for entry in log] == ["HTTP 500", "HTTP 204"]
    assert log[-1]["state"] == "delivered"


def test_recent_jobs_and_webhook_secret(store: JobStore) -> None:
    key = issue_key(store, credits=10_000).record
    other = issue_key(store, credits=10_000).record
    jobs = [_submit(store, key.id)[0] for _ in range(4)]
    _submit(store, other.id)
    assert [job.id for job in store.list_jobs(key.id, 3)] == [j.id for j in jobs[::-1][:3]]
    secret = store.webhook_secret(key.id, "whsec_first")
    assert secret == "whsec_first" == store.webhook_secret(key.id, "whsec_second")
