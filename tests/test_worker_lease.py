"""The worker's timekeeping without processes: a real SQLite store and a clock the test moves."""

from __future__ import annotations

from pathlib import Path

import pytest

from reelserve.catalog import get_model, parse_submit
from reelserve.catalog.models import TEXT2VIDEO
from reelserve.jobs import ClaimedJob, JobOrder
from reelserve.jobs.sqlite import SqliteJobStore
from reelserve.keys import issue_key
from reelserve.worker_lease import AttemptWatch, Liveness, Verdict, WorkerTiming

TIMING = WorkerTiming(lease_s=30, renew_every_s=10, shutdown_grace_s=5, heartbeat_every_s=1,
                      cancel_check_s=0.25, progress_write_s=1)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> SqliteJobStore:
    return SqliteJobStore(tmp_path / "jobs.sqlite3", retention_s=60)


def _claimed(store: SqliteJobStore) -> ClaimedJob:
    key = issue_key(store, credits=1000).record
    params = parse_submit(get_model(TEXT2VIDEO), {"prompt": "p", "duration": "3"})
    store.submit_jobs([JobOrder(key.id, params, 1)])
    claimed = store.claim_next_job("w", lease_s=TIMING.lease_s)
    assert claimed is not None
    return claimed


def _lease_expiry(store: SqliteJobStore, job_id: str) -> float:
    row = store._conn().execute("SELECT lease_expires_at FROM jobs WHERE id = ?",
                                (job_id,)).fetchone()
    return float(row[0])


def test_the_lease_is_renewed_once_per_interval(store: SqliteJobStore) -> None:
    clock, job = Clock(), _claimed(store)
    watch = AttemptWatch(store, job, TIMING, clock)
    before = _lease_expiry(store, job.id)
    clock.now += 9.9
    assert watch.check(stopping=False) is Verdict.CONTINUE
    assert _lease_expiry(store, job.id) == before  # not due yet
    clock.now += 0.2
    assert watch.check(stopping=False) is Verdict.CONTINUE
    assert _lease_expiry(store, job.id) > before
    assert watch.next_renewal == clock.now + TIMING.renew_every_s


def test_progress_reaches_the_store_within_a_second_not_at_every_step(
        store: SqliteJobStore) -> None:
    clock, job = Clock(), _claimed(store)
    watch = AttemptWatch(store, job, TIMING, clock)
    watch.on_progress(0.3)
    assert watch.check(stopping=False) is Verdict.CONTINUE
    assert store.get_job(job.id).progress == pytest.approx(0.3)  # type: ignore[union-attr]
    clock.now += 0.5
    watch.on_progress(0.6)
    watch.check(stopping=False)
    assert store.get_job(job.id).progress == pytest.approx(0.3)  # type: ignore[union-attr]
    clock.now += 0.6
    watch.check(stopping=False)
    assert store.get_job(job.id).progress == pytest.approx(0.6)  # type: ignore[union-attr]


def test_a_cancel_is_noticed_at_the_next_state_check(store: SqliteJobStore) -> None:
    clock, job = Clock(), _claimed(store)
    watch = AttemptWatch(store, job, TIMING, clock)
    assert watch.check(stopping=False) is Verdict.CONTINUE
    store.cancel_job(job.id)
    clock.now += 0.1
    assert watch.check(stopping=False) is Verdict.CONTINUE  # checked 0.1 s ago
    clock.now += 0.2
    assert watch.check(stopping=False) is Verdict.CANCELED


def test_a_lease_taken_by_another_worker_is_lost(store: SqliteJobStore) -> None:
    clock, job = Clock(), _claimed(store)
    watch = AttemptWatch(store, job, TIMING, clock)
    store.abandon_attempt(job.id, job.attempt, "lost", 3)
    assert store.claim_next_job("other", lease_s=30) is not None
    clock.now += TIMING.renew_every_s
    assert watch.check(stopping=False) is Verdict.LEASE_LOST


def test_shutdown_lets_the_job_run_for_the_grace_then_hands_it_back(
        store: SqliteJobStore) -> None:
    clock, job = Clock(), _claimed(store)
    watch = AttemptWatch(store, job, TIMING, clock)
    assert watch.check(stopping=True) is Verdict.GRACE_STARTED
    clock.now += 4.9
    assert watch.check(stopping=True) is Verdict.CONTINUE
    clock.now += 0.2
    assert watch.check(stopping=True) is Verdict.GRACE_OVER
    no_grace = WorkerTiming(30, 10, 0, 1)
    assert AttemptWatch(store, job, no_grace, clock).check(True) is Verdict.GRACE_OVER


def test_liveness_writes_one_heartbeat_per_interval(store: SqliteJobStore) -> None:
    clock = Clock()
    liveness = Liveness(store, "w1", TIMING, clock)
    liveness.beat("fixture", None, (TEXT2VIDEO,))
    [first] = store.list_workers()
    assert first.models == (TEXT2VIDEO,) and first.job_id is None
    clock.now += 0.5
    liveness.beat("fixture", "job-1", (TEXT2VIDEO,))
    assert store.list_workers()[0].job_id is None  # not due: nothing written
    clock.now += 0.6
    liveness.beat("fixture", "job-1", (TEXT2VIDEO,))
    assert store.list_workers()[0].job_id == "job-1"
