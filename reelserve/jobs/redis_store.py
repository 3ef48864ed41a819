"""``JobStore`` on Redis, for several API servers and workers on several machines.

Layout under a key prefix ``P`` (default ``reelserve``):

- ``P:key:<id>`` hash per API key; ``P:keys:byhash`` and ``P:keys:byprefix`` look ids up;
- ``P:job:<id>`` hash per job, which Redis expires itself when its retention ends;
- ``P:queue`` sorted set of queued job ids by submit sequence (a job handed back
  keeps its place); ``P:fair`` the same ids by fair tag (the dispatch order) and
  ``P:kq:<key>`` each key's, ``P:vtime`` the scheduler's virtual time, ``P:running``
  running jobs per key, ``P:queued-models`` queued jobs per model, ``P:wake:<slug>``
  lists idle workers block on; ``P:leases`` sorted set of running job ids by lease expiry,
  which is where lost workers' jobs are found again (the pending-entry recovery);
- ``P:ledger:<job>`` hash with at most one hold, capture and release;
- ``P:expiring`` and ``P:outputs``: finished jobs by expiry and their output files,
  for the sweeper; ``P:state-counts``, ``P:workers``, ``P:rate:<key>:<window>``.

Every change of a job is one Lua script (``redis_scripts``), atomic and timed by
Redis' own clock. One Redis (or a primary with replicas) is assumed, not a
Redis Cluster: the scripts touch keys they compute from the prefix.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Sequence
from typing import Any, cast

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from reelserve.catalog import MODELS, JobParams
from reelserve.errors import (
    Conflict,
    IdempotencyMismatch,
    InsufficientCredits,
    KeyRevoked,
    NotFound,
    QueueFull,
    RateLimited,
    RequestNotFound,
    StaleAttempt,
)
from reelserve.jobs import redis_layout
from reelserve.jobs import redis_scripts as scripts
from reelserve.jobs.records import (
    LEDGER_GRACE_S,
    VOICE_RATE,
    WORKER_FORGET_S,
    ApiKey,
    ClaimedJob,
    Job,
    JobOrder,
    QueueStats,
    Refusal,
    Submitted,
    SweepReport,
    Voice,
    WebhookDelivery,
    WorkerRecord,
    check_key_limits,
    new_job_id,
    new_voice_id,
    webhook_id,
)
from reelserve.jobs.redis_durability import redis_location
from reelserve.jobs.states import CANCELED_STATUS, IllegalTransition, JobState

Script = Callable[..., Any]


class RedisJobStore:
    """``JobStore`` on one Redis; ``clock`` and ``ids`` are for tests that pin them.

    The layout under ``prefix`` is migrated to this release's version on opening
    unless ``migrate`` is false (``open_store`` checks the server first).
    """

    durability_warnings: tuple[str, ...] = ()

    def __init__(self, url: str, *, retention_s: float, prefix: str = "reelserve",
                 clock: Callable[[], float] | None = None,
                 ids: Callable[[], str] = new_job_id, migrate: bool = True,
                 fair_dispatch: bool = True) -> None:
        self.url = url
        self.fair_dispatch = fair_dispatch  # False: one FIFO across keys (for comparison)
        self.retention_s = retention_s
        self.prefix = prefix
        self._clock = clock
        self._ids = ids
        # A Redis restart (a failover, a deploy) takes a moment: calls are retried
        # with backoff for about ten seconds before the error reaches the caller.
        self.redis = redis.Redis.from_url(
            url, decode_responses=True, health_check_interval=30, socket_timeout=30,
            socket_connect_timeout=5,
            retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=15),
            retry_on_error=[redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError])
        register = self._script
        self._submit = register(scripts.SUBMIT)
        self._claim = register(scripts.CLAIM)
        self._renew = register(scripts.RENEW)
        self._complete = register(scripts.COMPLETE)
        self._fail = register(scripts.FAIL)
        self._abandon = register(scripts.ABANDON)
        self._recover = register(scripts.RECOVER)
        self._sweep = register(scripts.SWEEP)
        self._rate = register(scripts.RATE_LIMIT)
        self._cancel = register(scripts.CANCEL)
        self._claim_webhooks = register(scripts.CLAIM_WEBHOOKS)
        self._find_key = self.redis.register_script(scripts.FIND_KEY)
        self._fair_rank = self.redis.register_script(scripts.FAIR_RANK)
        if migrate:
            self.migrate_layout(f"Redis at {redis_location(url)} (prefix {prefix})")

    def migrate_layout(self, where: str) -> int:
        """Bring the key layout to this release's version; answers the version it had."""
        return redis_layout.migrate(self.redis, self.prefix, where)

    def _script(self, text: str) -> Script:
        """A script that refuses illegal moves as ``check_transition`` does."""
        if self._clock is not None:
            text = scripts.reading_pinned_clock(text)
        script = self.redis.register_script(text)

        def run(*, args: list[Any]) -> Any:
            if self._clock is not None:
                self.redis.set(self._k("clock"), repr(self._clock()))
            try:
                return script(args=args)
            except redis.ResponseError as error:
                if "IllegalTransition: " in str(error):
                    raise IllegalTransition(str(error).split("IllegalTransition: ", 1)[1]
                                            .split(" script:", 1)[0]) from error
                raise

        return run

    def _k(self, *parts: object) -> str:
        return ":".join([self.prefix, *map(str, parts)])

    def now(self) -> float:
        if self._clock is not None:
            return self._clock()
        seconds, micros = cast(tuple[int, int], self.redis.time())
        return seconds + micros / 1_000_000

    def close(self) -> None:
        self.redis.close()

    # -- keys and credits -----------------------------------------------------
    def create_key(self, key_hash: str, prefix: str, *, name: str, credits: int,
                   models: tuple[str, ...] | None) -> ApiKey:
        key_id = int(cast(int, self.redis.incr(self._k("keys", "seq"))))
        with self.redis.pipeline() as pipe:
            pipe.hset(self._k("key", key_id), mapping={
                "id": key_id, "prefix": prefix, "hash": key_hash, "name": name,
                "models": "" if models is None else json.dumps(models), "balance": credits,
                "revoked": 0, "created_at": self.now()})
            pipe.hset(self._k("keys", "byhash"), key_hash, str(key_id))
            pipe.hset(self._k("keys", "byprefix"), prefix, str(key_id))
            pipe.execute()
        return self.get_key(key_id)

    def find_key(self, key_hash: str) -> ApiKey | None:
        flat = cast(list[str] | None, self._find_key(args=[self.prefix, key_hash]))
        return _key(dict(zip(flat[::2], flat[1::2], strict=True))) if flat else None

    def get_key(self, key_id: int) -> ApiKey:
        key = self._key_or_none(key_id)
        if key is None:
            raise NotFound(f"no key with id {key_id}")
        return key

    def _key_or_none(self, key_id: int) -> ApiKey | None:
        row = cast(dict[str, str], self.redis.hgetall(self._k("key", key_id)))
        return None if not row else _key(row)

    def list_keys(self) -> list[ApiKey]:
        ids = sorted(int(v) for v in cast(list[str], self.redis.hvals(self._k("keys", "byprefix"))))
        return [key for key in map(self._key_or_none, ids) if key is not None]

    def _key_by_prefix(self, prefix: str) -> int:
        index = cast(dict[str, str], self.redis.hgetall(self._k("keys", "byprefix")))
        found = [int(key_id) for shown, key_id in index.items()
                 if shown.startswith(prefix) or prefix.startswith(shown)]
        if len(found) != 1:
            raise NotFound(f"{'no key' if not found else f'{len(found)} keys'} "
                           f"with prefix {prefix!r}")
        return found[0]

    def revoke_key(self, prefix: str) -> ApiKey:
        key_id = self._key_by_prefix(prefix)
        self.redis.hset(self._k("key", key_id), "revoked", "1")
        return self.get_key(key_id)

    def add_credits(self, prefix: str, amount: int) -> ApiKey:
        key_id = self._key_by_prefix(prefix)
        self.redis.hincrby(self._k("key", key_id), "balance", amount)
        return self.get_key(key_id)

    def set_key_limits(self, prefix: str, *, weight: float | None = None,
                       max_concurrent: int | None = None,
                       max_queued: int | None = None) -> ApiKey:
        check_key_limits(weight, max_concurrent, max_queued)
        key_id = self._key_by_prefix(prefix)
        changes = {name: value for name, value in (
            ("weight", weight), ("max_concurrent", max_concurrent),
            ("max_queued", max_queued)) if value is not None}
        if changes:
            self.redis.hset(self._k("key", key_id), mapping=changes)
        return self.get_key(key_id)

    def ledger(self, job_id: str) -> list[tuple[str, int]]:
        entries = cast(dict[str, str], self.redis.hgetall(self._k("ledger", job_id)))
        return [(kind, int(entries[kind])) for kind in ("hold", "capture", "release")
                if kind in entries]

    def hit_rate_limit(self, key_id: int, limit: int, window_s: float) -> None:
        """Count one submit against a limit every API server shares."""
        allowed, reset_at = cast(list[Any], self._rate(args=[self.prefix, key_id, limit,
                                                              window_s]))
        if not int(allowed):
            raise RateLimited(limit, window_s, float(reset_at))

    # -- submit and read ------------------------------------------------------
    def submit_jobs(self, orders: Sequence[JobOrder]) -> list[Submitted | Refusal]:
        ids = [self._ids() for _ in orders]
        args: list[Any] = [self.prefix]
        for order, job_id in zip(orders, ids, strict=True):
            args += [order.key_id, order.price, job_id, json.dumps(order.params.to_json()),
                     order.webhook_url or "", order.idempotency_key or "", order.body_digest,
                     order.params.slug, int(order.sync)]
        answers = cast(list[list[Any]], self._submit(args=args))
        now = self.now()
        outcomes: list[Submitted | Refusal] = []
        for order, job_id, (code, balance, answer_id) in zip(orders, ids, answers, strict=True):
            if code == 0:
                outcomes.append(InsufficientCredits(order.price / 1000, int(balance) / 1000))
            elif code == 2:
                outcomes.append(IdempotencyMismatch(order.idempotency_key or ""))
            elif code == 3:
                outcomes.append((self._must_get(str(answer_id)), int(balance)))
            elif code == 4:
                outcomes.append(QueueFull(int(answer_id)))
            elif code == 5:
                outcomes.append(KeyRevoked(order.key_id))
            else:
                job = Job(id=job_id, key_id=order.key_id, params=order.params,
                          state=JobState.QUEUED, price=order.price, hold="held", attempt=0,
                          created_at=now, webhook_url=order.webhook_url)
                outcomes.append((job, int(balance)))
        return outcomes

    def list_jobs(self, key_id: int, limit: int) -> list[Job]:
        ids = cast(list[str], self.redis.zrevrange(self._k("keyjobs", key_id), 0, limit * 2))
        jobs: list[Job] = []
        for job_id in ids:
            job = self.get_job(job_id)
            if job is None:  # expired: forget it here too
                self.redis.zrem(self._k("keyjobs", key_id), job_id)
            elif len(jobs) < limit:
                jobs.append(job)
        return jobs

    def cancel_job(self, job_id: str) -> Job:
        answer = str(self._cancel(args=[self.prefix, job_id, CANCELED_STATUS, self.retention_s]))
        if answer == "MISSING":
            raise RequestNotFound(job_id)
        if answer != "OK":
            raise Conflict(f"request {job_id} already ended {answer}")
        return self._must_get(job_id)

    def attempt_is_current(self, job_id: str, attempt: int) -> bool:
        state, current = cast(list[str | None],
                              self.redis.hmget(self._k("job", job_id), ["state", "attempt"]))
        return state == "PROCESSING" and current == str(attempt)

    # -- voices ---------------------------------------------------------------
    def create_voice(self, key_id: int, name: str, pitch_hz: float | None,
                     sample: bytes) -> Voice:
        voice = Voice(new_voice_id(self._ids()), key_id, name, pitch_hz,
                      len(sample) / 2 / VOICE_RATE, self.now())
        with self.redis.pipeline() as pipe:
            pipe.hset(self._k("voice", voice.id), mapping={
                "id": voice.id, "key_id": key_id, "name": name,
                "pitch_hz": "" if pitch_hz is None else pitch_hz,
                "duration_s": voice.duration_s, "created_at": voice.created_at,
                "sample": base64.b64encode(sample).decode()})
            pipe.zadd(self._k("voices", key_id), {voice.id: voice.created_at})
            pipe.execute()
        return voice

    def list_voices(self, key_id: int) -> list[Voice]:
        ids = cast(list[str], self.redis.zrange(self._k("voices", key_id), 0, -1))
        return [voice for voice in map(self.get_voice, ids) if voice is not None]

    def get_voice(self, voice_id: str) -> Voice | None:
        row = cast(list[str | None], self.redis.hmget(
            self._k("voice", voice_id), ["id", "key_id", "name", "pitch_hz", "duration_s",
                                          "created_at"]))
        if row[0] is None:
            return None
        return Voice(str(row[0]), int(str(row[1])), str(row[2]), _float(row[3]),
                     float(str(row[4])), float(str(row[5])))

    def voice_sample(self, voice_id: str) -> bytes:
        sample = self.redis.hget(self._k("voice", voice_id), "sample")
        if sample is None:
            raise NotFound(f"no voice {voice_id!r}")
        return base64.b64decode(cast(str, sample))

    # -- webhooks -------------------------------------------------------------
    def claim_due_webhooks(self, limit: int, lease_s: float) -> list[WebhookDelivery]:
        rows = cast(list[list[str]], self._claim_webhooks(args=[self.prefix, limit, lease_s]))
        return [WebhookDelivery(row[0], row[1], int(row[2]), row[3], json.loads(row[4]),
                                int(row[5])) for row in rows if row[0]]

    def record_webhook_attempt(self, delivery_id: str, outcome: str,
                               retry_at: float | None, delivered: bool) -> None:
        key = self._k("webhook", delivery_id)
        job_id = cast(str | None, self.redis.hget(key, "job_id"))
        if job_id is None:
            return
        attempt = int(cast(int, self.redis.hincrby(key, "attempts", 1)))
        state = "delivered" if delivered else "pending" if retry_at is not None else "failed"
        log = self._k("webhook-log", job_id)
        with self.redis.pipeline() as pipe:
            pipe.hset(key, "state", state)
            if retry_at is not None and not delivered:
                pipe.zadd(self._k("webhooks", "due"), {delivery_id: retry_at})
            else:
                pipe.zrem(self._k("webhooks", "due"), delivery_id)
                pipe.expire(key, 86400)
            pipe.rpush(log, json.dumps({"id": delivery_id, "url": self.redis.hget(key, "url"),
                                        "attempt": attempt, "at": self.now(),
                                        "outcome": outcome}))
            pipe.expire(log, int(86400 + self.retention_s))
            pipe.execute()

    def webhook_log(self, job_id: str) -> list[dict[str, Any]]:
        entries = [json.loads(raw) for raw in cast(
            list[str], self.redis.lrange(self._k("webhook-log", job_id), 0, -1))]
        state = self.redis.hget(self._k("webhook", webhook_id(job_id)), "state")
        return [{**entry, "state": state or "failed"} for entry in entries]

    def webhook_secret(self, key_id: int, new_secret: str) -> str:
        key = self._k("key", key_id)
        if not self.redis.exists(key):
            raise NotFound(f"no key with id {key_id}")
        self.redis.hsetnx(key, "webhook_secret", new_secret)
        return str(self.redis.hget(key, "webhook_secret"))

    def get_job(self, job_id: str) -> Job | None:
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self._k("job", job_id))
            pipe.time()
            row, (seconds, micros) = pipe.execute()
        if not row:
            return None
        job = _job(row)
        now = seconds + micros / 1_000_000 if self._clock is None else self._clock()
        if job.expires_at is not None and job.expires_at <= now:
            return None
        return job

    def queue_position(self, job_id: str) -> int | None:
        """1 for the next job to run (caps and routing aside): a rank, O(log n)."""
        if not self.fair_dispatch:
            rank = self.redis.zrank(self._k("queue"), job_id)
        else:
            rank = self._fair_rank(args=[self.prefix, job_id])
        return None if rank is None else int(cast(int, rank)) + 1

    def queued_by_model(self) -> dict[str, int]:
        counts = cast(dict[str, str], self.redis.hgetall(self._k("queued-models")))
        return {slug: int(n) for slug, n in counts.items() if int(n) > 0}

    def queue_stats(self) -> QueueStats:
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.zcard(self._k("queue"))
            pipe.zrange(self._k("queue"), 0, 0)
            pipe.hgetall(self._k("state-counts"))
            depth, first, counts = pipe.execute()
        age = 0.0
        if first:
            created = self.redis.hget(self._k("job", first[0]), "created_at")
            if created is not None:
                age = max(0.0, self.now() - float(cast(str, created)))
        by_state = {state: int(n) for state, n in counts.items() if int(n) > 0}
        return QueueStats(int(depth), age, by_state)

    # -- workers --------------------------------------------------------------
    def claim_next_job(self, worker_id: str, lease_s: float,
                       models: tuple[str, ...] | None = None) -> ClaimedJob | None:
        answer = self._claim(args=[self.prefix, worker_id, lease_s, int(self.fair_dispatch),
                                   *(models or ())])
        if answer is None:
            return None
        job_id, attempt, params, queued_for = cast(list[Any], answer)
        return ClaimedJob(job_id, int(attempt), JobParams.from_json(json.loads(params)),
                          float(queued_for))

    def wait_for_work(self, timeout_s: float, models: tuple[str, ...] | None = None) -> None:
        """Block on the wake-up lists of ``models`` until a submit or requeue, or timeout."""
        lists = [self._k("wake", slug) for slug in (models if models is not None else MODELS)]
        # Whole seconds: Redis before 6 takes no fractions here.
        self.redis.blpop(lists, timeout=max(1, math.ceil(timeout_s)))

    def renew_lease(self, job_id: str, attempt: int, lease_s: float, progress: float) -> None:
        if not self._renew(args=[self.prefix, job_id, attempt, lease_s, progress]):
            raise StaleAttempt(job_id, attempt)

    def complete_job(self, job_id: str, attempt: int, output_key: str,
                     metrics: dict[str, Any]) -> Job:
        price = self.redis.hget(self._k("job", job_id), "price")
        metrics = {**metrics, "cost": int(cast(str, price or 0)) / 1000}
        if not self._complete(args=[self.prefix, job_id, attempt, output_key,
                                    json.dumps(metrics), self.retention_s]):
            raise StaleAttempt(job_id, attempt)
        return self._must_get(job_id)

    def fail_job(self, job_id: str, attempt: int, error: str, error_status: int) -> Job:
        if not self._fail(args=[self.prefix, job_id, attempt, error, error_status,
                                self.retention_s]):
            raise StaleAttempt(job_id, attempt)
        return self._must_get(job_id)

    def abandon_attempt(self, job_id: str, attempt: int, reason: str, max_attempts: int,
                        *, counts: bool = True) -> Job:
        if not self._abandon(args=[self.prefix, job_id, attempt, reason, max_attempts,
                                   int(counts), self.retention_s]):
            raise StaleAttempt(job_id, attempt)
        return self._must_get(job_id)

    def recover_expired_leases(self, max_attempts: int) -> int:
        return int(cast(int, self._recover(args=[self.prefix, max_attempts,
                                                  self.retention_s])))

    def heartbeat_worker(self, worker_id: str, engine: str, job_id: str | None,
                         models: tuple[str, ...] | None = None) -> None:
        now = self.now()
        key = self._k("workers")
        known = self.redis.hget(key, worker_id)
        started = json.loads(cast(str, known))["started_at"] if known else now
        self.redis.hset(key, worker_id, json.dumps(
            {"engine": engine, "job_id": job_id, "started_at": started, "last_seen": now,
             "models": models}))

    def remove_worker(self, worker_id: str) -> None:
        self.redis.hdel(self._k("workers"), worker_id)

    def list_workers(self) -> list[WorkerRecord]:
        rows = cast(dict[str, str], self.redis.hgetall(self._k("workers")))
        workers = []
        for worker_id, raw in sorted(rows.items()):
            data = json.loads(raw)
            models = data.get("models")
            workers.append(WorkerRecord(worker_id, data["engine"], data["job_id"],
                                        data["started_at"], data["last_seen"],
                                        None if models is None else tuple(models)))
        return workers

    # -- retention ------------------------------------------------------------
    def sweep_expired(self) -> SweepReport:
        count, *outputs = cast(list[Any], self._sweep(args=[self.prefix, LEDGER_GRACE_S]))
        # Workers gone for a day are forgotten.
        cutoff = self.now() - WORKER_FORGET_S
        stale = [w.id for w in self.list_workers() if w.last_seen < cutoff]
        if stale:
            self.redis.hdel(self._k("workers"), *stale)
        return SweepReport(int(count), tuple(outputs))

    def _must_get(self, job_id: str) -> Job:
        row = cast(dict[str, str], self.redis.hgetall(self._k("job", job_id)))
        if not row:
            raise NotFound(f"job {job_id} vanished")
        return _job(row)


def _float(value: str | None) -> float | None:
    return None if value in (None, "") else float(cast(str, value))


def _key(row: dict[str, str]) -> ApiKey:
    models = tuple(json.loads(row["models"])) if row["models"] else None
    return ApiKey(int(row["id"]), row["prefix"], row["name"], models, int(row["balance"]),
                  row["revoked"] == "1", float(row["created_at"]),
                  float(row.get("weight") or 1), int(row.get("max_concurrent") or 0),
                  int(row.get("max_queued") or 0))


def _job(row: dict[str, str]) -> Job:
    status = row.get("error_status")
    return Job(
        id=row["id"], key_id=int(row["key_id"]),
        params=JobParams.from_json(json.loads(row["params"])), state=JobState(row["state"]),
        price=int(row["price"]), hold=row["hold"], attempt=int(row["attempt"]),
        created_at=float(row["created_at"]), started_at=_float(row.get("started_at")),
        completed_at=_float(row.get("completed_at")), expires_at=_float(row.get("expires_at")),
        progress=float(row.get("progress") or 0), output_key=row.get("output_key") or None,
        error=row.get("error") or None, error_status=int(status) if status else None,
        metrics=json.loads(row["metrics"]) if row.get("metrics") else {},
        canceled=row.get("canceled") == "1", webhook_url=row.get("webhook_url") or None,
    )
