"""``check_transition`` guards every move on both backends.

SQLite calls it before each write; the Redis scripts carry its table
(``redis_scripts.COMMON``) and refuse before writing. Through the store's own
methods no illegal move can be asked for (the attempt fence comes first), so the
Redis test corrupts a job by hand to reach the guard.
"""

from __future__ import annotations

import pytest

from reelserve.jobs.redis_store import RedisJobStore
from reelserve.jobs.states import ALLOWED_MOVES, IllegalTransition, JobState, check_transition
from store_contract.stores import PinnedClock, new_key, open_redis, order, submitted


@pytest.mark.parametrize("current", list(JobState))
def test_check_transition_allows_exactly_the_table(current: JobState) -> None:
    for target in JobState:
        if target in ALLOWED_MOVES[current]:
            check_transition(current, target)
        else:
            with pytest.raises(IllegalTransition):
                check_transition(current, target)


def test_redis_scripts_refuse_an_illegal_move_and_write_nothing(redis_url: str) -> None:
    store, remove = open_redis(PinnedClock())
    try:
        _claim_a_completed_job(store)
    finally:
        remove()


def _claim_a_completed_job(store: RedisJobStore) -> None:
    key = new_key(store)
    job = submitted(store.submit_jobs([order(key.id)])[0])
    # A job that says COMPLETED but is still in the queue: claiming it would move
    # COMPLETED -> PROCESSING.
    store.redis.hset(store._k("job", job.id), "state", "COMPLETED")
    with pytest.raises(IllegalTransition, match="a COMPLETED job cannot become PROCESSING"):
        store.claim_next_job("w1", 30)
    after = store.redis.hgetall(store._k("job", job.id))
    assert (after["state"], after["attempt"]) == ("COMPLETED", "0")
    assert store.queue_position(job.id) == 1
