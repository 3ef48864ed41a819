"""One test per ``JobStore`` method, each run on SQLite and on the real Redis.

Names start with the method they pin (``test_<method>_...``);
``test_every_store_method_has_a_contract_test`` keeps it that way.
"""

from __future__ import annotations

import inspect
import sys

import pytest

from reelserve.errors import (
    Conflict,
    IdempotencyMismatch,
    InsufficientCredits,
    KeyRevoked,
    NotFound,
    RequestNotFound,
    StaleAttempt,
)
from reelserve.jobs import JobState, JobStore
from reelserve.jobs.records import LEDGER_GRACE_S, WORKER_FORGET_S
from reelserve.jobs.states import ALLOWED_MOVES
from store_contract import test_scheduling
from store_contract.stores import RETENTION_S, START, PinnedClock, new_key, order, submitted

LEASE_S = 30.0


def _running(store: JobStore, key_id: int) -> tuple[str, int]:
    job = submitted(store.submit_jobs([order(key_id)])[0])
    claimed = store.claim_next_job("w1", LEASE_S)
    assert claimed is not None and claimed.id == job.id
    return job.id, claimed.attempt


# -- keys and credits ----------------------------------------------------------
def test_create_key_answers_the_key_with_its_balance_and_models(store: JobStore) -> None:
    key = store.create_key("h1", "rs_abcdefgh", name="first", credits=1500, models=("a", "b"))
    assert (key.prefix, key.name, key.balance, key.models, key.revoked) == (
        "rs_abcdefgh", "first", 1500, ("a", "b"), False)
    assert key.created_at == START
    assert store.create_key("h2", "rs_zzzzzzzz", name="", credits=0, models=None).models is None


def test_find_key_by_hash_or_none(store: JobStore) -> None:
    new_key(store)
    key = store.create_key("known-hash", "rs_known000", name="", credits=0, models=None)
    assert store.find_key("known-hash") == key
    assert store.find_key("no-such-hash") is None


def test_get_key_by_id_or_not_found(store: JobStore) -> None:
    key = new_key(store)
    assert store.get_key(key.id) == key
    with pytest.raises(NotFound):
        store.get_key(key.id + 1000)


def test_list_keys_in_creation_order(store: JobStore) -> None:
    made = [new_key(store, name=name) for name in ("a", "b", "c")]
    assert [key.id for key in store.list_keys()] == [key.id for key in made]


def test_revoke_key_by_prefix_marks_it_revoked(store: JobStore) -> None:
    key = new_key(store, prefix="rs_Revoke01")
    assert store.revoke_key("rs_Revoke").revoked
    assert store.get_key(key.id).revoked


@pytest.mark.parametrize("given", ["rs_ab_", "rs_AB", "rs_a%", "rs_ab_cd", "rs_ab_cdefX"])
def test_add_credits_prefix_matches_literally_and_with_case(store: JobStore,
                                                            given: str) -> None:
    """No wildcard, case counts: SQLite's LIKE once matched all of these."""
    new_key(store, prefix="rs_abXcdefg")
    new_key(store, prefix="rs_ab_cdefg")
    if given in ("rs_ab_", "rs_ab_cd"):
        assert store.add_credits(given, 5).prefix == "rs_ab_cdefg"
        return
    with pytest.raises(NotFound, match=r"no key|2 keys"):
        store.add_credits(given, 5)


def test_add_credits_to_the_one_key_a_prefix_or_whole_key_names(store: JobStore) -> None:
    key = new_key(store, credits=100, prefix="rs_Credit01")
    new_key(store, prefix="rs_Credit02")
    assert store.add_credits("rs_Credit01", 250).balance == 350
    # the whole key pasted: it starts with the shown prefix
    assert store.add_credits("rs_Credit01restofthekey", 50).balance == 400
    assert store.get_key(key.id).balance == 400
    with pytest.raises(NotFound, match="2 keys"):
        store.add_credits("rs_Credit0", 1)
    with pytest.raises(NotFound, match="no key"):
        store.add_credits("rs_Nothing", 1)


def test_ledger_has_one_hold_and_one_capture_or_release(store: JobStore) -> None:
    key = new_key(store)
    job_id, attempt = _running(store, key.id)
    store.complete_job(job_id, attempt, "out.mp4", {})
    assert store.ledger(job_id) == [("hold", 240), ("capture", 240)]
    canceled = submitted(store.submit_jobs([order(key.id)])[0])
    store.cancel_job(canceled.id)
    assert store.ledger(canceled.id) == [("hold", 240), ("release", 240)]
    assert store.ledger("unknown") == []


# -- submit and read -------------------------------------------------------------
def test_submit_jobs_holds_each_price_and_refuses_on_its_own(store: JobStore) -> None:
    key = new_key(store, credits=400)
    first, second, third = store.submit_jobs([order(key.id), order(key.id),
                                              order(key.id, price=20)])
    assert not isinstance(first, Exception) and first[1] == 160
    assert isinstance(second, InsufficientCredits)
    assert not isinstance(third, Exception) and third[1] == 140
    job = first[0]
    assert (job.state, job.hold, job.attempt, job.created_at) == (JobState.QUEUED, "held", 0,
                                                                   START)
    assert store.get_key(key.id).balance == 140


def test_submit_jobs_with_an_idempotency_key_answers_the_same_job(store: JobStore) -> None:
    key = new_key(store)
    first = submitted(store.submit_jobs([order(key.id, idempotency_key="i1", digest="d")])[0])
    again = store.submit_jobs([order(key.id, idempotency_key="i1", digest="d")])[0]
    assert not isinstance(again, Exception) and again[0].id == first.id and again[1] == 760
    other = store.submit_jobs([order(key.id, idempotency_key="i1", digest="other")])[0]
    assert isinstance(other, IdempotencyMismatch)
    assert store.get_key(key.id).balance == 760


def test_submit_jobs_refuses_a_revoked_or_unknown_key_first_and_holds_nothing(
        store: JobStore) -> None:
    revoked, live = new_key(store, name="gone"), new_key(store)
    earlier = submitted(store.submit_jobs([order(revoked.id, idempotency_key="i1",
                                                 digest="d")])[0])
    store.revoke_key(revoked.prefix)
    before = store.queue_stats()
    replay, other_body, plain, unknown, paid = store.submit_jobs([
        order(revoked.id, idempotency_key="i1", digest="d"),
        order(revoked.id, idempotency_key="i1", digest="other"),
        order(revoked.id, price=1),
        order(revoked.id + live.id + 100),
        order(live.id)])
    for refusal in (replay, other_body, plain, unknown):
        assert isinstance(refusal, KeyRevoked) and refusal.message == "invalid API key"
    assert not isinstance(paid, Exception) and paid[1] == 760
    assert store.get_key(revoked.id).balance == 760  # only the earlier job's hold
    assert [job.id for job in store.list_jobs(revoked.id, 10)] == [earlier.id]
    assert store.ledger(earlier.id) == [("hold", 240)]
    after = store.queue_stats()
    assert after.depth == before.depth + 1  # the live key's job alone


def test_get_job_answers_none_once_retention_ends(store: JobStore, clock: PinnedClock) -> None:
    key = new_key(store)
    job_id, attempt = _running(store, key.id)
    ended = store.complete_job(job_id, attempt, "out.mp4", {"steps": 3})
    assert store.get_job(job_id) == ended
    assert ended.expires_at == START + RETENTION_S
    clock.advance(RETENTION_S)
    assert store.get_job(job_id) is None
    assert store.get_job("unknown") is None


def test_queue_position_counts_from_one_and_is_none_unless_queued(store: JobStore) -> None:
    key = new_key(store)
    jobs = [submitted(store.submit_jobs([order(key.id)])[0]) for _ in range(3)]
    assert [store.queue_position(job.id) for job in jobs] == [1, 2, 3]
    store.claim_next_job("w1", LEASE_S)
    assert [store.queue_position(job.id) for job in jobs] == [None, 1, 2]
    assert store.queue_position("unknown") is None


def test_queue_stats_counts_states_and_the_oldest_wait(store: JobStore,
                                                      clock: PinnedClock) -> None:
    assert store.queue_stats().depth == 0 and store.queue_stats().oldest_age_s == 0.0
    key = new_key(store)
    store.submit_jobs([order(key.id), order(key.id)])
    store.claim_next_job("w1", LEASE_S)
    clock.advance(2.5)
    stats = store.queue_stats()
    assert (stats.depth, stats.oldest_age_s) == (1, 2.5)
    assert stats.by_state == {"QUEUED": 1, "PROCESSING": 1}


def test_list_jobs_newest_first_without_expired_ones(store: JobStore,
                                                     clock: PinnedClock) -> None:
    key, other = new_key(store), new_key(store)
    old_id, attempt = _running(store, key.id)
    store.complete_job(old_id, attempt, "o.mp4", {})
    clock.advance(1)
    newer = [submitted(store.submit_jobs([order(key.id)])[0]) for _ in range(2)]
    store.submit_jobs([order(other.id)])
    assert [job.id for job in store.list_jobs(key.id, 10)] == [newer[1].id, newer[0].id, old_id]
    assert [job.id for job in store.list_jobs(key.id, 1)] == [newer[1].id]
    clock.advance(RETENTION_S)
    assert [job.id for job in store.list_jobs(key.id, 10)] == [newer[1].id, newer[0].id]


def test_cancel_job_releases_the_hold_and_refuses_an_ended_job(store: JobStore) -> None:
    key = new_key(store)
    job_id, attempt = _running(store, key.id)
    canceled = store.cancel_job(job_id)
    assert (canceled.state, canceled.canceled, canceled.error, canceled.hold) == (
        JobState.FAILED, True, "canceled", "released")
    assert store.get_key(key.id).balance == 1000
    assert not store.attempt_is_current(job_id, attempt)
    with pytest.raises(Conflict):
        store.cancel_job(job_id)
    with pytest.raises(RequestNotFound):
        store.cancel_job("unknown")


def test_attempt_is_current_only_for_the_running_attempt(store: JobStore) -> None:
    key = new_key(store)
    job_id, attempt = _running(store, key.id)
    assert store.attempt_is_current(job_id, attempt)
    assert not store.attempt_is_current(job_id, attempt + 1)
    store.abandon_attempt(job_id, attempt, "crash", max_attempts=3)
    assert not store.attempt_is_current(job_id, attempt)
    assert not store.attempt_is_current("unknown", 1)


# -- workers -----------------------------------------------------------------------
def test_claim_next_job_takes_the_oldest_under_a_lease(store: JobStore,
                                                       clock: PinnedClock) -> None:
    assert store.claim_next_job("w1", LEASE_S) is None
    key = new_key(store)
    first = submitted(store.submit_jobs([order(key.id, prompt="first")])[0])
    store.submit_jobs([order(key.id, prompt="second")])
    clock.advance(1.5)
    claimed = store.claim_next_job("w1", LEASE_S)
    assert claimed is not None
    assert (claimed.id, claimed.attempt, claimed.params.prompt, claimed.queued_for_s) == (
        first.id, 1, "first", 1.5)
    job = store.get_job(first.id)
    assert job is not None and (job.state, job.started_at) == (JobState.PROCESSING,
                                                               START + 1.5)


def test_renew_lease_keeps_the_job_and_raises_progress_only(store: JobStore,
                                                             clock: PinnedClock) -> None:
    key = new_key(store)
    job_id, attempt = _running(store, key.id)
    clock.advance(LEASE_S - 1)
    store.renew_lease(job_id, attempt, LEASE_S, 0.5)
    store.renew_lease(job_id, attempt, LEASE_S, 0.25)
    clock.advance(LEASE_S - 1)
    assert store.recover_expired_leases(max_attempts=3) == 0
    job = store.get_job(job_id)
    assert job is not None and job.progress == 0.5
    with pytest.raises(StaleAttempt):
        store.renew_lease(job_id, attempt + 1, LEASE_S, 0.6)


def test_complete_job_captures_once_and_a_retry_answers_the_same(store: JobStore) -> None:
    key = new_key(store)
    job_id, attempt = _running(store, key.id)
    done = store.complete_job(job_id, attempt, "out.mp4", {"steps": 2})
    assert (done.state, done.hold, done.output_key, done.progress) == (
        JobState.COMPLETED, "captured", "out.mp4", 1.0)
    assert done.metrics == {"steps": 2, "cost": 0.24}
    # the reply was lost and the worker tries again: same answer, nothing twice
    assert store.complete_job(job_id, attempt, "out.mp4", {"steps": 2}) == done
    assert store.ledger(job_id) == [("hold", 240), ("capture", 240)]
    with pytest.raises(StaleAttempt):
        store.complete_job(job_id, attempt, "other.mp4", {})
    with pytest.raises(StaleAttempt):
        store.complete_job(job_id, attempt + 1, "out.mp4", {})


def test_fail_job_releases_the_hold_and_a_retry_answers_the_same(store: JobStore) -> None:
    key = new_key(store)
    job_id, attempt = _running(store, key.id)
    failed = store.fail_job(job_id, attempt, "engine broke", 500)
    assert (failed.state, failed.error, failed.error_status, failed.hold) == (
        JobState.FAILED, "engine broke", 500, "released")
    assert store.fail_job(job_id, attempt, "engine broke", 500) == failed
    assert store.get_key(key.id).balance == 1000
    with pytest.raises(StaleAttempt):
        store.fail_job(job_id, attempt, "another error", 500)


def test_fail_job_after_a_cancel_is_stale(store: JobStore) -> None:
    key = new_key(store)
    job_id, attempt = _running(store, key.id)
    store.cancel_job(job_id)
    with pytest.raises(StaleAttempt):
        store.fail_job(job_id, attempt, "interrupted", 500)
    with pytest.raises(StaleAttempt):
        store.complete_job(job_id, attempt, "out.mp4", {})


def test_abandon_attempt_requeues_then_fails_at_max_attempts(store: JobStore) -> None:
    key = new_key(store)
    job_id, attempt = _running(store, key.id)
    back = store.abandon_attempt(job_id, attempt, "shutting down", 1, counts=False)
    assert back.state is JobState.QUEUED and store.queue_position(job_id) == 1
    again = store.claim_next_job("w2", LEASE_S)
    assert again is not None and again.attempt == 2
    failed = store.abandon_attempt(job_id, 2, "crash", max_attempts=1)
    assert failed.state is JobState.FAILED and failed.error is not None
    assert "failed after 1 attempts; last: crash" in failed.error
    assert store.get_key(key.id).balance == 1000


def test_recover_expired_leases_requeues_lost_jobs(store: JobStore, clock: PinnedClock) -> None:
    key = new_key(store)
    job_id, attempt = _running(store, key.id)
    assert store.recover_expired_leases(max_attempts=2) == 0
    clock.advance(LEASE_S + 0.25)
    assert store.recover_expired_leases(max_attempts=2) == 1
    assert store.queue_position(job_id) == 1
    with pytest.raises(StaleAttempt):
        store.complete_job(job_id, attempt, "late.mp4", {})
    store.claim_next_job("w1", LEASE_S)
    clock.advance(LEASE_S + 0.25)
    assert store.recover_expired_leases(max_attempts=2) == 1
    job = store.get_job(job_id)
    assert job is not None and job.state is JobState.FAILED and job.hold == "released"


def test_heartbeat_worker_keeps_its_start_and_moves_last_seen(store: JobStore,
                                                              clock: PinnedClock) -> None:
    store.heartbeat_worker("w1", "preview", None)
    clock.advance(2)
    store.heartbeat_worker("w1", "preview", "job-1")
    [worker] = store.list_workers()
    assert (worker.id, worker.engine, worker.job_id, worker.started_at, worker.last_seen) == (
        "w1", "preview", "job-1", START, START + 2)


def test_remove_worker_forgets_it(store: JobStore) -> None:
    store.heartbeat_worker("w1", "preview", None)
    store.heartbeat_worker("w2", "preview", None)
    store.remove_worker("w1")
    store.remove_worker("never-seen")
    assert [w.id for w in store.list_workers()] == ["w2"]


def test_list_workers_sorted_by_id(store: JobStore) -> None:
    for worker_id in ("w3", "w1", "w2"):
        store.heartbeat_worker(worker_id, "fixture", None)
    assert [w.id for w in store.list_workers()] == ["w1", "w2", "w3"]


# -- voices ------------------------------------------------------------------------
def test_create_voice_measures_its_duration(store: JobStore) -> None:
    key = new_key(store)
    voice = store.create_voice(key.id, "narrator", 180.5, b"\x01\x00" * 16_000 * 3)
    assert voice.id.startswith("voice_") and len(voice.id) == len("voice_") + 16
    assert (voice.key_id, voice.name, voice.pitch_hz, voice.duration_s, voice.created_at) == (
        key.id, "narrator", 180.5, 3.0, START)


def test_list_voices_of_one_key_in_creation_order(store: JobStore, clock: PinnedClock) -> None:
    key, other = new_key(store), new_key(store)
    first = store.create_voice(key.id, "a", None, b"\x00\x00" * 100)
    clock.advance(1)
    second = store.create_voice(key.id, "b", 90.0, b"\x00\x00" * 100)
    store.create_voice(other.id, "c", None, b"\x00\x00" * 100)
    assert store.list_voices(key.id) == [first, second]


def test_get_voice_or_none(store: JobStore) -> None:
    key = new_key(store)
    voice = store.create_voice(key.id, "a", None, b"\x00\x00" * 10)
    assert store.get_voice(voice.id) == voice
    assert store.get_voice("voice_unknown") is None


def test_voice_sample_answers_the_bytes_kept(store: JobStore) -> None:
    key = new_key(store)
    sample = bytes(range(256)) * 4
    voice = store.create_voice(key.id, "a", None, sample)
    assert store.voice_sample(voice.id) == sample
    with pytest.raises(NotFound):
        store.voice_sample("voice_unknown")


# -- webhooks ----------------------------------------------------------------------
def _ended_with_webhook(store: JobStore) -> str:
    key = new_key(store)
    job = submitted(store.submit_jobs([order(key.id, webhook_url="https://h.example/x")])[0])
    claimed = store.claim_next_job("w1", LEASE_S)
    assert claimed is not None
    store.complete_job(job.id, claimed.attempt, "out.mp4", {})
    return job.id


def test_claim_due_webhooks_one_per_ended_job_named_after_it(store: JobStore,
                                                             clock: PinnedClock) -> None:
    job_id = _ended_with_webhook(store)
    [delivery] = store.claim_due_webhooks(10, lease_s=5)
    assert (delivery.id, delivery.job_id, delivery.url, delivery.attempts) == (
        f"msg_{job_id}", job_id, "https://h.example/x", 0)
    assert delivery.event == {"request_id": job_id, "status": "COMPLETED",
                              "output_key": "out.mp4", "error": None, "canceled": False,
                              "at": START}
    assert store.claim_due_webhooks(10, lease_s=5) == []  # leased to this sender
    clock.advance(5)
    assert [d.id for d in store.claim_due_webhooks(10, lease_s=5)] == [delivery.id]


def test_record_webhook_attempt_retries_then_delivers(store: JobStore,
                                                      clock: PinnedClock) -> None:
    job_id = _ended_with_webhook(store)
    [delivery] = store.claim_due_webhooks(10, lease_s=5)
    store.record_webhook_attempt(delivery.id, "HTTP 500", retry_at=START + 30, delivered=False)
    clock.advance(30)
    [again] = store.claim_due_webhooks(10, lease_s=5)
    assert again.attempts == 1
    store.record_webhook_attempt(again.id, "HTTP 200", retry_at=None, delivered=True)
    clock.advance(3600)
    assert store.claim_due_webhooks(10, lease_s=5) == []
    store.record_webhook_attempt("msg_unknown", "HTTP 200", None, True)  # ignored
    assert [entry["outcome"] for entry in store.webhook_log(job_id)] == ["HTTP 500", "HTTP 200"]


def test_webhook_log_lists_every_try_with_the_delivery_state(store: JobStore,
                                                             clock: PinnedClock) -> None:
    job_id = _ended_with_webhook(store)
    [delivery] = store.claim_due_webhooks(10, lease_s=5)
    store.record_webhook_attempt(delivery.id, "timed out", retry_at=None, delivered=False)
    assert store.webhook_log(job_id) == [{
        "id": f"msg_{job_id}", "url": "https://h.example/x", "attempt": 1, "at": START,
        "outcome": "timed out", "state": "failed"}]
    assert store.webhook_log("unknown") == []


def test_webhook_secret_is_set_once_per_key(store: JobStore) -> None:
    key = new_key(store)
    assert store.webhook_secret(key.id, "whsec_first") == "whsec_first"
    assert store.webhook_secret(key.id, "whsec_second") == "whsec_first"
    with pytest.raises(NotFound):
        store.webhook_secret(key.id + 1000, "whsec_x")


# -- retention -------------------------------------------------------------------
def test_sweep_expired_removes_jobs_then_ledgers_and_silent_workers(
        store: JobStore, clock: PinnedClock) -> None:
    key = new_key(store)
    job_id, attempt = _running(store, key.id)
    store.complete_job(job_id, attempt, "out.mp4", {})
    store.heartbeat_worker("gone", "preview", None)
    clock.advance(RETENTION_S)
    report = store.sweep_expired()
    assert (report.expired_jobs, report.deleted_outputs) == (1, ("out.mp4",))
    assert store.get_job(job_id) is None
    assert store.ledger(job_id) == [("hold", 240), ("capture", 240)]  # kept a day longer
    store.heartbeat_worker("alive", "preview", None)
    clock.advance(max(LEDGER_GRACE_S, WORKER_FORGET_S))
    assert store.sweep_expired().expired_jobs == 0
    assert store.ledger(job_id) == []
    assert [w.id for w in store.list_workers()] == ["alive"]


def test_now_is_the_store_clock(store: JobStore, clock: PinnedClock) -> None:
    assert store.now() == START
    clock.advance(0.25)
    assert store.now() == START + 0.25


def test_close_then_nothing_is_lost_for_the_next_opener(store: JobStore) -> None:
    key = new_key(store, credits=77)
    store.close()
    # both backends reopen their connection on the next call
    assert store.get_key(key.id).balance == 77


def test_durability_warnings_is_a_tuple_of_lines(store: JobStore) -> None:
    assert store.durability_warnings == ()


def test_every_move_the_transition_table_allows_is_one_a_job_can_make() -> None:
    reachable = {(a.value, b.value) for a, targets in ALLOWED_MOVES.items() for b in targets}
    assert reachable == {("QUEUED", "PROCESSING"), ("QUEUED", "FAILED"),
                         ("PROCESSING", "COMPLETED"), ("PROCESSING", "FAILED"),
                         ("PROCESSING", "QUEUED")}


def test_every_store_method_has_a_contract_test() -> None:
    methods = {name for name, _ in inspect.getmembers(JobStore, inspect.isfunction)
               if not name.startswith("_")}
    tests = [name for module in (sys.modules[__name__], test_scheduling)
             for name in dir(module) if name.startswith("test_")]
    untested = sorted(m for m in methods if not any(t.startswith(f"test_{m}_") for t in tests))
    assert len(methods) >= 34
    assert untested == []
