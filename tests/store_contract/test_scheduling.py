"""The scheduling rules of the store contract, on SQLite and the real Redis (``store``).

Keys take turns (weighted), each key's jobs run oldest first, ``queue_position``
is the claim order, a /v1 job goes ahead of its key's async jobs, per-key caps on
running and queued jobs, routing by model, and the wake-up signal of idle workers.
"""

from __future__ import annotations

import threading

import pytest

from reelserve.catalog import get_model, parse_submit
from reelserve.catalog.models import IMAGE2VIDEO, TEXT2VIDEO
from reelserve.errors import InvalidParameter, NotFound, QueueFull
from reelserve.fleet import live_workers, unserved_queued, waiting_reason
from reelserve.jobs import ApiKey, Job, JobOrder, JobStore
from reelserve.keys import issue_key


def _key(store: JobStore, name: str) -> ApiKey:
    return issue_key(store, credits=10**9, name=name).record


def _order(key: ApiKey, slug: str = TEXT2VIDEO, *, sync: bool = False,
           prompt: str = "p") -> JobOrder:
    body: dict[str, object] = {"prompt": prompt, "duration": "3", "generate_audio": False}
    if slug == IMAGE2VIDEO:
        body["start_image_url"] = "https://example.com/a.png"
    return JobOrder(key.id, parse_submit(get_model(slug), body), 1, sync=sync)


def _submit(store: JobStore, key: ApiKey, count: int = 1, **kwargs: object) -> list[Job]:
    jobs = []
    for outcome in store.submit_jobs([_order(key, **kwargs) for _ in range(count)]):  # type: ignore[arg-type]
        assert isinstance(outcome, tuple), outcome
        jobs.append(outcome[0])
    return jobs


def _claim_all(store: JobStore, models: tuple[str, ...] | None = None) -> list[str]:
    """Claim (and complete) jobs until none is left for ``models``: their ids in order."""
    order = []
    while (claimed := store.claim_next_job("w", lease_s=30, models=models)) is not None:
        order.append(claimed.id)
        store.complete_job(claimed.id, claimed.attempt, f"{claimed.id}.mp4", {})
    return order


def test_claim_next_job_lets_keys_take_turns_and_each_key_run_oldest_first(store: JobStore) -> None:
    big, small = _key(store, "big"), _key(store, "small")
    big_jobs = _submit(store, big, 6)
    small_jobs = _submit(store, small, 2)
    owner = {job.id: name for name, jobs in (("big", big_jobs), ("small", small_jobs))
             for job in jobs}
    order = _claim_all(store)
    assert [owner[job_id] for job_id in order] == ["big", "small", "big", "small",
                                                   "big", "big", "big", "big"]
    assert [job_id for job_id in order if owner[job_id] == "big"] == [j.id for j in big_jobs]


def test_claim_next_job_makes_a_late_small_key_wait_one_turn_not_the_backlog(
        store: JobStore) -> None:
    # The issue's measurement: A queued 12, then B queued 1; B no longer waits for all 12.
    a, b = _key(store, "a"), _key(store, "b")
    _submit(store, a, 12)
    for _ in range(3):
        claimed = store.claim_next_job("w", lease_s=30)
        assert claimed is not None
    [late] = _submit(store, b)
    assert store.queue_position(late.id) == 2
    order = _claim_all(store)
    assert order.index(late.id) == 1


def test_claim_next_job_gives_a_key_of_weight_two_twice_the_dispatches(store: JobStore) -> None:
    heavy, light = _key(store, "heavy"), _key(store, "light")
    store.set_key_limits(heavy.prefix, weight=2)
    heavy_ids = {job.id for job in _submit(store, heavy, 30)}
    _submit(store, light, 30)
    first = _claim_all(store)[:30]
    assert sum(job_id in heavy_ids for job_id in first) == 20


def test_queue_position_is_the_order_jobs_are_claimed_in(store: JobStore) -> None:
    keys = [_key(store, f"k{i}") for i in range(3)]
    store.set_key_limits(keys[2].prefix, weight=3)
    for round_ in range(3):
        for index, key in enumerate(keys):
            _submit(store, key, 1 + (index + round_) % 3)
    queued = [job.id for job in _all_queued(store, keys)]
    positions = {job_id: store.queue_position(job_id) for job_id in queued}
    assert sorted(positions.values()) == list(range(1, len(queued) + 1))
    order = _claim_all(store)
    assert order == sorted(queued, key=lambda job_id: positions[job_id])
    assert all(store.queue_position(job_id) is None for job_id in queued)


def _all_queued(store: JobStore, keys: list[ApiKey]) -> list[Job]:
    return [job for key in keys for job in store.list_jobs(key.id, 100)]


def test_submit_jobs_puts_a_sync_request_ahead_of_its_own_keys_async_jobs(store: JobStore) -> None:
    a, b = _key(store, "a"), _key(store, "b")
    waiting = _submit(store, a, 3)
    [other] = _submit(store, b)
    [sync] = _submit(store, a, sync=True)
    assert store.queue_position(sync.id) == 1
    order = _claim_all(store)
    assert order.index(sync.id) < min(order.index(job.id) for job in waiting)
    assert order.index(other.id) <= 2  # the other key loses at most one turn


def test_claim_next_job_holds_a_key_to_max_concurrent_while_others_go(
        store: JobStore) -> None:
    capped, other = _key(store, "capped"), _key(store, "other")
    assert store.set_key_limits(capped.prefix, max_concurrent=1).max_concurrent == 1
    capped_jobs = _submit(store, capped, 3)
    [other_job] = _submit(store, other)
    first = store.claim_next_job("w1", lease_s=30)
    assert first is not None and first.id == capped_jobs[0].id
    second = store.claim_next_job("w2", lease_s=30)
    assert second is not None and second.id == other_job.id
    assert store.claim_next_job("w3", lease_s=30) is None  # capped: its next job waits
    store.complete_job(first.id, first.attempt, "out.mp4", {})
    third = store.claim_next_job("w3", lease_s=30)
    assert third is not None and third.id == capped_jobs[1].id
    # A lost attempt frees the slot too.
    store.abandon_attempt(third.id, third.attempt, "handed back", 3, counts=False)
    again = store.claim_next_job("w1", lease_s=30)
    assert again is not None and again.id == third.id


def test_submit_jobs_refuses_past_max_queued_until_a_job_starts(store: JobStore) -> None:
    key = _key(store, "k")
    store.set_key_limits(key.prefix, max_queued=2)
    outcomes = store.submit_jobs([_order(key), _order(key), _order(key)])
    assert [type(outcome).__name__ for outcome in outcomes] == ["tuple", "tuple", "QueueFull"]
    refusal = outcomes[2]
    assert isinstance(refusal, QueueFull) and refusal.max_queued == 2
    assert "at most 2 jobs waiting" in refusal.message and "max-queued" in refusal.message
    assert store.get_key(key.id).balance == 10**9 - 2  # the refused order held nothing
    assert store.claim_next_job("w", lease_s=30) is not None
    assert isinstance(store.submit_jobs([_order(key)])[0], tuple)


def test_set_key_limits_keeps_them_and_zero_removes_a_cap(store: JobStore) -> None:
    key = _key(store, "k")
    assert (key.weight, key.max_concurrent, key.max_queued) == (1.0, 0, 0)
    changed = store.set_key_limits(key.prefix, weight=2.5, max_concurrent=4, max_queued=9)
    assert (changed.weight, changed.max_concurrent, changed.max_queued) == (2.5, 4, 9)
    assert store.set_key_limits(key.prefix, max_queued=0).max_queued == 0
    listed = next(k for k in store.list_keys() if k.id == key.id)
    assert (listed.weight, listed.max_concurrent, listed.max_queued) == (2.5, 4, 0)
    with pytest.raises(NotFound):
        store.set_key_limits("rs_nothere", weight=1)
    with pytest.raises(InvalidParameter, match="weight: must be more than 0, not 0"):
        store.set_key_limits(key.prefix, weight=0)
    with pytest.raises(InvalidParameter, match=r"max_queued: must be 0 \(no cap\) or more"):
        store.set_key_limits(key.prefix, max_queued=-1)
    assert store.get_key(key.id).weight == 2.5  # a refused change changes nothing


def test_queued_by_model_counts_what_a_model_restricted_worker_leaves(store: JobStore) -> None:
    key = _key(store, "k")
    [t2v] = _submit(store, key, slug=TEXT2VIDEO)
    [i2v] = _submit(store, key, slug=IMAGE2VIDEO)
    assert _claim_all(store, models=(IMAGE2VIDEO,)) == [i2v.id]
    assert store.claim_next_job("w", lease_s=30, models=(IMAGE2VIDEO,)) is None
    assert store.queued_by_model() == {TEXT2VIDEO: 1}
    assert _claim_all(store, models=None) == [t2v.id]
    assert store.queued_by_model() == {}


def test_heartbeat_worker_models_tell_what_a_queued_job_waits_for(store: JobStore) -> None:
    key = _key(store, "k")
    _submit(store, key, 2, slug=TEXT2VIDEO)  # queued although no worker ever served it
    store.heartbeat_worker("i2v-only", "fixture", None, (IMAGE2VIDEO,))
    [record] = store.list_workers()
    assert record.models == (IMAGE2VIDEO,) and not record.serves(TEXT2VIDEO)
    live = live_workers(store.list_workers(), store.now(), stale_s=30)
    assert [worker.id for worker in live] == ["i2v-only"]
    assert waiting_reason(TEXT2VIDEO) == f"a worker for {TEXT2VIDEO}"
    assert unserved_queued(store, stale_s=30) == {TEXT2VIDEO: 2}
    store.heartbeat_worker("any", "fixture", None, None)
    assert unserved_queued(store, stale_s=30) == {}


def test_abandon_attempt_hand_back_keeps_the_jobs_fair_place(store: JobStore) -> None:
    a, b = _key(store, "a"), _key(store, "b")
    [first, _] = _submit(store, a, 2)
    _submit(store, b, 2)
    claimed = store.claim_next_job("w", lease_s=30)
    assert claimed is not None and claimed.id == first.id
    store.abandon_attempt(first.id, claimed.attempt, "shutting down", 3, counts=False)
    assert store.queue_position(first.id) == 1
    assert _claim_all(store)[0] == first.id


def test_claim_next_job_in_fifo_mode_follows_submit_order_across_keys(
        store: JobStore) -> None:
    store.fair_dispatch = False  # type: ignore[attr-defined]  # both stores take it at open
    a, b = _key(store, "a"), _key(store, "b")
    jobs = _submit(store, a, 3) + _submit(store, b, 1)
    assert store.queue_position(jobs[3].id) == 4
    assert _claim_all(store) == [job.id for job in jobs]


def test_wait_for_work_returns_when_a_submit_signals(store: JobStore) -> None:
    key = _key(store, "k")
    store.wait_for_work(0.01, None)  # the signal exists before the submit
    woke = threading.Event()

    def idle_worker() -> None:
        store.wait_for_work(60, (TEXT2VIDEO,))
        woke.set()

    waiter = threading.Thread(target=idle_worker, daemon=True)
    waiter.start()
    threading.Event().wait(0.2)  # let it block first
    _submit(store, key)
    # Well before its 60 s timeout: the submit's signal woke it.
    assert woke.wait(20)
