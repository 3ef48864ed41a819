"""SQLite and Redis driven through the same random steps, compared after every one.

A Hypothesis state machine submits (with and without Idempotency-Keys), claims,
renews, reports progress, completes (and retries a completion), fails, loses
leases, cancels, lets results expire, sweeps, adds credits, revokes keys,
creates voices and claims and records webhooks, on both backends at once. After
each step it compares what a client could observe: every job's state and body,
balances, ledger entries, webhook deliveries (ids and payloads) and their log,
queue positions and stats, voices and workers; and it checks that every move a
job made is one ``check_transition`` allows.

The stores share a pinned clock and issue the same ids, so any difference is a
difference of behaviour.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from reelserve.errors import ReelserveError
from reelserve.jobs import Job, JobStore
from reelserve.jobs.states import IllegalTransition, JobState, check_transition
from store_contract.stores import RETENTION_S, T2V, open_pair, order

LEASE_S = 30.0
MAX_ATTEMPTS = 2
PRICES = st.sampled_from([120, 240, 480])
IDEMPOTENCY = st.sampled_from([None, None, "alpha", "beta"])
DIGESTS = st.sampled_from(["body-1", "body-2"])
WAITS = st.sampled_from([0.25, 5.0, LEASE_S + 0.25])


def _outcome(call: Any) -> Any:
    """What a call answered, or the error it raised as (kind, message)."""
    try:
        return call()
    except IllegalTransition:
        raise
    except ReelserveError as error:
        return (type(error).__name__, error.message)


class StoresSideBySide(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.pair = open_pair()
        self.keys: list[tuple[int, str]] = []  # (id, shown prefix)
        self.jobs: list[str] = []
        self.voices: list[str] = []
        self.deliveries: list[str] = []
        self.seen: dict[str, JobState] = {}

    def both(self, call: Any) -> Any:
        """Run ``call(store)`` on both backends; they must answer the same."""
        on_sqlite = _outcome(lambda: call(self.pair.sqlite))
        on_redis = _outcome(lambda: call(self.pair.redis))
        assert on_sqlite == on_redis, f"sqlite: {on_sqlite!r}\n redis: {on_redis!r}"
        return on_sqlite

    def ask(self, method: str, *args: Any) -> Any:
        """``both`` for one store method and its arguments."""
        return self.both(lambda s: getattr(s, method)(*args))

    def teardown(self) -> None:
        self.pair.close()

    def _job(self, index: int) -> str:
        return self.jobs[index % len(self.jobs)]

    def _attempt(self, job_id: str) -> int:
        job = self.pair.sqlite.get_job(job_id)
        return 0 if job is None else job.attempt

    # -- keys and credits -----------------------------------------------------------
    @rule(credits=st.integers(0, 1500))
    def create_key(self, credits: int) -> None:
        n = len(self.keys) + 1
        prefix = f"rs_key{n:05d}"
        key = self.both(lambda s: s.create_key(f"hash-{n}", prefix, name=f"k{n}",
                                               credits=credits, models=None))
        self.keys.append((key.id, prefix))

    @precondition(lambda self: self.keys)
    @rule(index=st.integers(0, 50), shown=st.integers(3, 11), amount=st.integers(1, 900))
    def add_credits(self, index: int, shown: int, amount: int) -> None:
        prefix = self.keys[index % len(self.keys)][1][:shown]
        self.both(lambda s: s.add_credits(prefix, amount))

    @precondition(lambda self: self.keys)
    @rule(index=st.integers(0, 50))
    def revoke(self, index: int) -> None:
        prefix = self.keys[index % len(self.keys)][1]
        self.both(lambda s: s.revoke_key(prefix))

    # -- submit and read -----------------------------------------------------------
    @precondition(lambda self: self.keys)
    @rule(index=st.integers(0, 50), price=PRICES, idempotency_key=IDEMPOTENCY,
          digest=DIGESTS, webhook=st.booleans(), count=st.integers(1, 3))
    def submit(self, index: int, price: int, idempotency_key: str | None, digest: str,
               webhook: bool, count: int) -> None:
        # Any key, a revoked one too: its orders must be refused alike (KeyRevoked).
        key_id = self.keys[index % len(self.keys)][0]
        orders = [order(key_id, price, idempotency_key=idempotency_key, digest=digest,
                        webhook_url="https://hooks.example/r" if webhook else None)
                  for _ in range(count)]
        outcomes = self.both(lambda s: [(type(o).__name__, o.message)
                                        if isinstance(o, ReelserveError) else o
                                        for o in s.submit_jobs(orders)])
        for outcome in outcomes:
            if isinstance(outcome, tuple) and isinstance(outcome[0], Job) \
                    and outcome[0].id not in self.jobs:
                self.jobs.append(outcome[0].id)

    @precondition(lambda self: self.keys)
    @rule(index=st.integers(0, 50), sync=st.booleans(), count=st.integers(1, 3))
    def submit_fairly(self, index: int, sync: bool, count: int) -> None:
        """Scheduling: a /v1 (sync) order or a batch, on a key that may have caps."""
        key_id = self.keys[index % len(self.keys)][0]
        orders = [replace(order(key_id, 120), sync=sync) for _ in range(count)]
        outcomes = self.both(lambda s: [(type(o).__name__, o.message)
                                        if isinstance(o, ReelserveError) else o
                                        for o in s.submit_jobs(orders)])
        self.jobs += [o[0].id for o in outcomes
                      if isinstance(o, tuple) and isinstance(o[0], Job)]

    @precondition(lambda self: self.keys)
    @rule(index=st.integers(0, 50), weight=st.sampled_from([None, 0.5, 1.0, 3.0]),
          max_concurrent=st.sampled_from([None, 0, 1, 2]),
          max_queued=st.sampled_from([None, 0, 1, 3]))
    def set_key_limits(self, index: int, weight: float | None, max_concurrent: int | None,
                       max_queued: int | None) -> None:
        prefix = self.keys[index % len(self.keys)][1]
        self.both(lambda s: s.set_key_limits(prefix, weight=weight,
                                             max_concurrent=max_concurrent,
                                             max_queued=max_queued))

    @rule(worker=st.sampled_from(["w1", "w2"]),
          models=st.sampled_from([(T2V,), ("kling-3-standard-image2video",)]))
    def claim_models(self, worker: str, models: tuple[str, ...]) -> None:
        """Routing: a worker that claims only ``models``."""
        claimed = self.both(lambda s: s.claim_next_job(worker, LEASE_S, models))
        self.both(lambda s: s.heartbeat_worker(worker, "fixture",
                                               None if claimed is None else claimed.id, models))

    @precondition(lambda self: self.jobs)
    @rule(index=st.integers(0, 50))
    def cancel(self, index: int) -> None:
        job_id = self._job(index)
        self.both(lambda s: s.cancel_job(job_id))

    # -- workers ----------------------------------------------------------------------
    @rule(worker=st.sampled_from(["w1", "w2"]))
    def claim(self, worker: str) -> None:
        claimed = self.both(lambda s: s.claim_next_job(worker, LEASE_S))
        self.both(lambda s: s.heartbeat_worker(worker, "fixture",
                                               None if claimed is None else claimed.id))

    @precondition(lambda self: self.jobs)
    @rule(index=st.integers(0, 50), stale=st.booleans())
    def renew(self, index: int, stale: bool) -> None:
        job_id = self._job(index)
        attempt = self._attempt(job_id) - stale
        self.both(lambda s: s.renew_lease(job_id, attempt, LEASE_S, 0.0))

    @precondition(lambda self: self.jobs)
    @rule(index=st.integers(0, 50), progress=st.sampled_from([0.25, 0.5, 0.75]))
    def progress(self, index: int, progress: float) -> None:
        job_id = self._job(index)
        attempt = self._attempt(job_id)
        self.both(lambda s: s.renew_lease(job_id, attempt, LEASE_S, progress))

    @precondition(lambda self: self.jobs)
    @rule(index=st.integers(0, 50), stale=st.booleans(), retried=st.booleans())
    def complete(self, index: int, stale: bool, retried: bool) -> None:
        job_id = self._job(index)
        attempt = self._attempt(job_id) - stale
        output = f"{job_id}-{attempt}.mp4"
        self.both(lambda s: s.complete_job(job_id, attempt, output, {"steps": 4}))
        if retried:  # the reply was lost; the worker sends the same call again
            self.both(lambda s: s.complete_job(job_id, attempt, output, {"steps": 4}))

    @precondition(lambda self: self.jobs)
    @rule(index=st.integers(0, 50), stale=st.booleans(), retried=st.booleans())
    def fail(self, index: int, stale: bool, retried: bool) -> None:
        job_id = self._job(index)
        attempt = self._attempt(job_id) - stale
        self.both(lambda s: s.fail_job(job_id, attempt, "engine error", 500))
        if retried:
            self.both(lambda s: s.fail_job(job_id, attempt, "engine error", 500))

    @precondition(lambda self: self.jobs)
    @rule(index=st.integers(0, 50), counts=st.booleans())
    def hand_back(self, index: int, counts: bool) -> None:
        job_id = self._job(index)
        attempt = self._attempt(job_id)
        self.both(lambda s: s.abandon_attempt(job_id, attempt, "worker stopped",
                                              MAX_ATTEMPTS, counts=counts))

    @precondition(lambda self: self.jobs)
    @rule(index=st.integers(0, 50))
    def lose_lease(self, index: int) -> None:
        """The worker stops renewing: its lease runs out and the lease sweep finds it."""
        job_id = self._job(index)
        attempt = self._attempt(job_id)
        self.both(lambda s: s.renew_lease(job_id, attempt, 0.25, 0.0))
        self.pair.clock.advance(0.5)
        self.both(lambda s: s.recover_expired_leases(MAX_ATTEMPTS))

    # -- time and retention -------------------------------------------------------
    @rule(seconds=WAITS)
    def wait(self, seconds: float) -> None:
        self.pair.clock.advance(seconds)
        self.both(lambda s: s.recover_expired_leases(MAX_ATTEMPTS))

    @rule()
    def expire(self) -> None:
        self.pair.clock.advance(RETENTION_S)

    @rule()
    def sweep(self) -> None:
        self.both(lambda s: s.sweep_expired())

    # -- voices and webhooks --------------------------------------------------------
    @precondition(lambda self: self.keys)
    @rule(index=st.integers(0, 50), seconds=st.integers(1, 4))
    def create_voice(self, index: int, seconds: int) -> None:
        key_id = self.keys[index % len(self.keys)][0]
        voice = self.both(lambda s: s.create_voice(key_id, "v", 120.0,
                                                   b"\x01\x02" * 1600 * seconds))
        self.voices.append(voice.id)

    @rule(limit=st.integers(1, 3))
    def claim_webhooks(self, limit: int) -> None:
        deliveries = self.both(lambda s: s.claim_due_webhooks(limit, 5.0))
        self.deliveries += [d.id for d in deliveries if d.id not in self.deliveries]

    @precondition(lambda self: self.deliveries)
    @rule(index=st.integers(0, 50), result=st.sampled_from(["delivered", "retry", "gave up"]))
    def record_webhook(self, index: int, result: str) -> None:
        delivery = self.deliveries[index % len(self.deliveries)]
        retry_at = self.pair.clock() + 10 if result == "retry" else None
        self.both(lambda s: s.record_webhook_attempt(delivery, f"outcome {result}", retry_at,
                                                     result == "delivered"))

    # -- what a client can observe ------------------------------------------------
    @invariant()
    def jobs_look_the_same(self) -> None:
        for job_id in self.jobs:
            job = self.ask("get_job", job_id)
            self.ask("queue_position", job_id)
            self.ask("ledger", job_id)
            self.ask("webhook_log", job_id)
            self.ask("attempt_is_current", job_id, job.attempt if job else 0)
            if job is not None:
                self._check_move(job_id, job.state)

    def _check_move(self, job_id: str, state: JobState) -> None:
        before = self.seen.get(job_id, JobState.QUEUED)
        if before is not state:
            check_transition(before, state)
        self.seen[job_id] = state

    @invariant()
    def keys_and_balances_look_the_same(self) -> None:
        self.ask("list_keys")
        for key_id, _ in self.keys:
            self.ask("list_jobs", key_id, 50)
            self.ask("list_voices", key_id)
            self.ask("webhook_secret", key_id, f"whsec_{key_id}")

    @invariant()
    def queue_voices_and_workers_look_the_same(self) -> None:
        self.ask("queue_stats")
        self.ask("queued_by_model")
        self.ask("list_workers")
        for voice_id in self.voices:
            self.ask("get_voice", voice_id)
            self.ask("voice_sample", voice_id)


def test_sqlite_and_redis_answer_every_step_the_same(redis_url: str) -> None:
    run_state_machine_as_test(StoresSideBySide, settings=settings(
        max_examples=30, stateful_step_count=25, deadline=None,
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
        suppress_health_check=[HealthCheck.too_slow]))


@pytest.mark.parametrize("store_kind", ["sqlite", "redis"])
def test_a_step_on_one_backend_is_a_difference_the_machine_sees(
        redis_url: str, store_kind: str) -> None:
    """The comparison can fail: a change on one backend only is caught."""
    machine = StoresSideBySide()
    try:
        machine.create_key(1000)
        store: JobStore = machine.pair.sqlite if store_kind == "sqlite" else machine.pair.redis
        store.add_credits("rs_key00001", 1)
        with pytest.raises(AssertionError):
            machine.keys_and_balances_look_the_same()
    finally:
        machine.teardown()
