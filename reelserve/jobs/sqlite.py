"""The SQLite job store: one file in WAL mode, shared by the API and the workers.

Write transactions use ``BEGIN IMMEDIATE`` so that two workers never claim the
same job, and every credit movement is a ledger row unique per (job, kind),
which is what makes holds, captures and releases happen exactly once.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from reelserve.catalog import JobParams
from reelserve.errors import (
    Conflict,
    IdempotencyMismatch,
    InsufficientCredits,
    KeyRevoked,
    NotFound,
    QueueFull,
    RequestNotFound,
    StaleAttempt,
    StoreUnreadable,
)
from reelserve.jobs import sqlite_fair as fair
from reelserve.jobs.local_wakeup import LocalWakeup
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
from reelserve.jobs.sqlite_migrations import migrate
from reelserve.jobs.sqlite_ranks import DeepPlaces, queue_position
from reelserve.jobs.states import CANCELED_STATUS, JobState, check_transition

JOB_COLUMNS = (
    "id, key_id, params, state, price, hold, attempt, created_at, started_at, completed_at,"
    " expires_at, progress, output_key, error, error_status, metrics, canceled, webhook_url"
)


class SqliteJobStore:
    """``JobStore`` on one SQLite file; safe to share between threads and processes.

    Opening it migrates the file to this release's schema (``sqlite_migrations``).
    """

    durability_warnings: tuple[str, ...] = ()  # WAL with fsync at checkpoints

    def __init__(self, path: Path, *, retention_s: float,
                 clock: Callable[[], float] = time.time,
                 ids: Callable[[], str] = new_job_id, fair_dispatch: bool = True) -> None:
        self.path = path
        self.retention_s = retention_s
        self.fair_dispatch = fair_dispatch  # False: one FIFO across keys (for comparison)
        self._clock = clock
        self._ids = ids
        self._local = threading.local()
        # Threads of one process take turns for the write lock here: waiting on a
        # mutex wakes at once, while SQLite's busy handler sleeps in growing steps.
        self._write_turn = threading.Lock()
        self._deep_places = DeepPlaces()
        self._wakeup = LocalWakeup(path.with_name(path.name + ".wake"))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            migrate(self._conn(), path)
        except (sqlite3.DatabaseError, OSError) as error:
            self.close()
            raise StoreUnreadable(f"the job store {path} cannot be opened: {error}") from error

    # -- plumbing -------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=30.0,
                                   check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        db = self._conn()
        with self._write_turn:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def now(self) -> float:
        return self._clock()

    def close(self) -> None:
        self._wakeup.close()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- keys and credits -----------------------------------------------------
    def create_key(self, key_hash: str, prefix: str, *, name: str, credits: int,
                   models: tuple[str, ...] | None) -> ApiKey:
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO keys (prefix, hash, name, models, balance, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (prefix, key_hash, name, None if models is None else json.dumps(models),
                 credits, self.now()),
            )
            key_id = cursor.lastrowid
        assert key_id is not None
        return self.get_key(key_id)

    def find_key(self, key_hash: str) -> ApiKey | None:
        row = self._conn().execute("SELECT * FROM keys WHERE hash = ?", (key_hash,)).fetchone()
        return None if row is None else _key(row)

    def get_key(self, key_id: int) -> ApiKey:
        row = self._conn().execute("SELECT * FROM keys WHERE id = ?", (key_id,)).fetchone()
        if row is None:
            raise NotFound(f"no key with id {key_id}")
        return _key(row)

    def list_keys(self) -> list[ApiKey]:
        return [_key(row) for row in self._conn().execute("SELECT * FROM keys ORDER BY id")]

    def _key_by_prefix(self, db: sqlite3.Connection, prefix: str) -> int:
        # substr compares bytes: case counts and no character is a wildcard.
        rows = db.execute(
            "SELECT id FROM keys WHERE substr(prefix, 1, length(:given)) = :given"
            " OR substr(:given, 1, length(prefix)) = prefix", {"given": prefix}).fetchall()
        if len(rows) != 1:
            found = "no key" if not rows else f"{len(rows)} keys"
            raise NotFound(f"{found} with prefix {prefix!r}")
        return int(rows[0]["id"])

    def revoke_key(self, prefix: str) -> ApiKey:
        with self._write() as db:
            key_id = self._key_by_prefix(db, prefix)
            db.execute("UPDATE keys SET revoked = 1 WHERE id = ?", (key_id,))
        return self.get_key(key_id)

    def add_credits(self, prefix: str, amount: int) -> ApiKey:
        with self._write() as db:
            key_id = self._key_by_prefix(db, prefix)
            db.execute("UPDATE keys SET balance = balance + ? WHERE id = ?", (amount, key_id))
        return self.get_key(key_id)

    def set_key_limits(self, prefix: str, *, weight: float | None = None,
                       max_concurrent: int | None = None,
                       max_queued: int | None = None) -> ApiKey:
        check_key_limits(weight, max_concurrent, max_queued)
        changes = {name: value for name, value in (
            ("weight", weight), ("max_concurrent", max_concurrent),
            ("max_queued", max_queued)) if value is not None}
        with self._write() as db:
            key_id = self._key_by_prefix(db, prefix)
            for column, value in changes.items():
                db.execute(f"UPDATE keys SET {column} = ? WHERE id = ?", (value, key_id))
        return self.get_key(key_id)

    def ledger(self, job_id: str) -> list[tuple[str, int]]:
        rows = self._conn().execute(
            "SELECT kind, amount FROM ledger WHERE job_id = ? ORDER BY at, rowid", (job_id,)
        )
        return [(row["kind"], row["amount"]) for row in rows]

    # -- submit and read ------------------------------------------------------
    def submit_jobs(self, orders: Sequence[JobOrder]) -> list[Submitted | Refusal]:
        outcomes: list[Submitted | Refusal] = []
        with self._write() as db:
            now = self.now()
            vtime = fair.virtual_time(db)  # no claim can move it inside this transaction
            for order in orders:
                outcomes.append(self._submit(db, order, now, vtime))
        queued = sum(1 for outcome in outcomes if isinstance(outcome, tuple))
        if queued:
            self._wakeup.signal(queued)
        return outcomes

    def _submit(self, db: sqlite3.Connection, order: JobOrder, now: float,
                vtime: float) -> Submitted | Refusal:
        job_id = self._ids()  # one per order, refused or not, as on Redis
        key = db.execute("SELECT id, balance, weight, last_tag, max_queued, revoked FROM keys"
                         " WHERE id = ?", (order.key_id,)).fetchone()
        if key is None or key["revoked"]:  # first: a revoked key learns nothing more
            return KeyRevoked(order.key_id)
        balance = int(key["balance"])
        if order.idempotency_key is not None:
            earlier = db.execute(
                "SELECT digest, job_id FROM idempotency WHERE key_id = ? AND idem_key = ?",
                (order.key_id, order.idempotency_key)).fetchone()
            if earlier is not None and earlier["digest"] != order.body_digest:
                return IdempotencyMismatch(order.idempotency_key)
            if earlier is not None:
                job = self._job_in(db, earlier["job_id"], now)
                if job is not None:
                    return job, balance
        try:
            fair.check_queue_cap(db, key)
        except QueueFull as full:
            return full
        if balance < order.price:
            return InsufficientCredits(order.price / 1000, balance / 1000)
        tag, last_tag = fair.next_tag(db, key, order, vtime)
        job = Job(id=job_id, key_id=order.key_id, params=order.params,
                  state=JobState.QUEUED, price=order.price, hold="held", attempt=0,
                  created_at=now, webhook_url=order.webhook_url)
        db.execute("UPDATE keys SET balance = balance - ?, last_tag = ? WHERE id = ?",
                   (order.price, last_tag, order.key_id))
        db.execute(
            "INSERT INTO jobs (id, key_id, params, state, price, hold, created_at, webhook_url,"
            " fair_tag, slug) VALUES (?, ?, ?, 'QUEUED', ?, 'held', ?, ?, ?, ?)",
            (job.id, order.key_id, json.dumps(order.params.to_json()), order.price, now,
             order.webhook_url, tag, order.params.slug),
        )
        if order.idempotency_key is not None:
            db.execute("INSERT OR REPLACE INTO idempotency VALUES (?, ?, ?, ?)",
                       (order.key_id, order.idempotency_key, order.body_digest, job.id))
        db.execute("INSERT INTO ledger VALUES (?, ?, 'hold', ?, ?)",
                   (job.id, order.key_id, order.price, now))
        return job, balance - order.price

    def get_job(self, job_id: str) -> Job | None:
        return self._job_in(self._conn(), job_id, self.now())

    def _job_in(self, db: sqlite3.Connection, job_id: str, now: float) -> Job | None:
        row = db.execute(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?"
            " AND (expires_at IS NULL OR expires_at > ?)", (job_id, now),
        ).fetchone()
        return None if row is None else _job(row)

    def list_jobs(self, key_id: int, limit: int) -> list[Job]:
        rows = self._conn().execute(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE key_id = ?"
            " AND (expires_at IS NULL OR expires_at > ?) ORDER BY seq DESC LIMIT ?",
            (key_id, self.now(), limit))
        return [_job(row) for row in rows]

    def cancel_job(self, job_id: str) -> Job:
        with self._write() as db:
            row = db.execute(
                "SELECT key_id, price, hold, state, attempt, handed_back FROM jobs WHERE id = ?"
                " AND (expires_at IS NULL OR expires_at > ?)", (job_id, self.now())).fetchone()
            if row is None:
                raise RequestNotFound(job_id)
            if JobState(row["state"]).is_terminal:
                raise Conflict(f"request {job_id} already ended {row['state']}")
            db.execute("UPDATE jobs SET canceled = 1 WHERE id = ?", (job_id,))
            self._fail(db, job_id, row, "canceled", CANCELED_STATUS)
        return self._must_get(job_id)

    def attempt_is_current(self, job_id: str, attempt: int) -> bool:
        row = self._conn().execute("SELECT state, attempt FROM jobs WHERE id = ?",
                                   (job_id,)).fetchone()
        return row is not None and row["state"] == "PROCESSING" and row["attempt"] == attempt

    def queue_position(self, job_id: str) -> int | None:
        """1 for the next job to run; None unless the job is QUEUED."""
        return queue_position(self._conn(), self._deep_places, job_id, self.fair_dispatch)

    def queued_by_model(self) -> dict[str, int]:
        return fair.queued_by_model(self._conn())

    def queue_stats(self) -> QueueStats:
        db = self._conn()
        # Every job the store still keeps, as on Redis: an expired one until the sweep.
        by_state = {row["state"]: int(row["n"]) for row in db.execute(
            "SELECT state, COUNT(*) AS n FROM jobs GROUP BY state")}
        oldest = db.execute(
            "SELECT created_at FROM jobs WHERE state = 'QUEUED' ORDER BY seq LIMIT 1").fetchone()
        age = 0.0 if oldest is None else max(0.0, self.now() - float(oldest["created_at"]))
        return QueueStats(by_state.get("QUEUED", 0), age, by_state)

    # -- workers --------------------------------------------------------------
    def claim_next_job(self, worker_id: str, lease_s: float,
                       models: tuple[str, ...] | None = None) -> ClaimedJob | None:
        db = self._conn()
        # A read first, so that idle workers polling the queue take no write lock.
        if db.execute("SELECT 1 FROM jobs WHERE state = 'QUEUED' LIMIT 1").fetchone() is None:
            return None
        with self._write() as db:
            row = fair.pick_job(db, models, self.fair_dispatch)
            if row is None:
                return None
            fair.advance_clock(db, float(row["fair_tag"]))
            now = self.now()
            attempt = int(row["attempt"]) + 1
            db.execute(
                "UPDATE jobs SET state = 'PROCESSING', attempt = ?, worker_id = ?,"
                " lease_expires_at = ?, progress = 0, started_at = COALESCE(started_at, ?)"
                " WHERE id = ?",
                (attempt, worker_id, now + lease_s, now, row["id"]),
            )
        return ClaimedJob(row["id"], attempt, JobParams.from_json(json.loads(row["params"])),
                          now - float(row["created_at"]))

    def wait_for_work(self, timeout_s: float, models: tuple[str, ...] | None = None) -> None:
        """Block until a submit or a requeue signals, or ``timeout_s`` passes."""
        self._wakeup.wait(timeout_s)

    def renew_lease(self, job_id: str, attempt: int, lease_s: float, progress: float) -> None:
        with self._write() as db:
            cursor = db.execute(
                "UPDATE jobs SET lease_expires_at = ?, progress = MAX(progress, ?)"
                " WHERE id = ? AND attempt = ? AND state = 'PROCESSING'",
                (self.now() + lease_s, progress, job_id, attempt),
            )
            if cursor.rowcount != 1:
                raise StaleAttempt(job_id, attempt)

    def _processing(self, db: sqlite3.Connection, job_id: str, attempt: int) -> sqlite3.Row:
        row = db.execute(
            "SELECT key_id, price, hold, state, attempt, handed_back FROM jobs"
            " WHERE id = ? AND attempt = ?",
            (job_id, attempt),
        ).fetchone()
        if row is None or row["state"] != JobState.PROCESSING.value:
            raise StaleAttempt(job_id, attempt)
        return cast(sqlite3.Row, row)

    def complete_job(self, job_id: str, attempt: int, output_key: str,
                     metrics: dict[str, Any]) -> Job:
        now = self.now()
        with self._write() as db:
            if self._ended_by(db, job_id, attempt, "COMPLETED", "output_key", output_key):
                return self._must_get(job_id)  # a retry of a call that already succeeded
            row = self._processing(db, job_id, attempt)
            check_transition(JobState(row["state"]), JobState.COMPLETED)
            metrics = {**metrics, "cost": row["price"] / 1000}
            db.execute(
                "UPDATE jobs SET state = 'COMPLETED', hold = 'captured', output_key = ?,"
                " metrics = ?, progress = 1, completed_at = ?, expires_at = ?,"
                " lease_expires_at = NULL WHERE id = ?",
                (output_key, json.dumps(metrics), now, now + self.retention_s, job_id),
            )
            db.execute("INSERT INTO ledger VALUES (?, ?, 'capture', ?, ?)",
                       (job_id, row["key_id"], row["price"], now))
            self._enqueue_webhook(db, job_id, now)
        return self._must_get(job_id)

    def fail_job(self, job_id: str, attempt: int, error: str, error_status: int) -> Job:
        with self._write() as db:
            if self._ended_by(db, job_id, attempt, "FAILED", "error", error):
                return self._must_get(job_id)  # a retry of a call that already succeeded
            row = self._processing(db, job_id, attempt)
            self._fail(db, job_id, row, error, error_status)
        return self._must_get(job_id)

    def _ended_by(self, db: sqlite3.Connection, job_id: str, attempt: int, state: str,
                  column: str, value: str) -> bool:
        """True when this attempt already ended the job so, with the same outcome."""
        row = db.execute(f"SELECT state, attempt, {column} AS value FROM jobs WHERE id = ?",
                         (job_id,)).fetchone()
        return (row is not None and row["state"] == state and row["attempt"] == attempt
                and row["value"] == value)

    def _fail(self, db: sqlite3.Connection, job_id: str, row: sqlite3.Row, error: str,
              error_status: int) -> None:
        check_transition(JobState(row["state"]), JobState.FAILED)
        now = self.now()
        db.execute(
            "UPDATE jobs SET state = 'FAILED', hold = 'released', error = ?, error_status = ?,"
            " metrics = ?, completed_at = ?, expires_at = ?, lease_expires_at = NULL WHERE id = ?",
            (error, error_status, json.dumps({"cost": 0.0}), now, now + self.retention_s, job_id),
        )
        if row["hold"] == "held":
            db.execute("UPDATE keys SET balance = balance + ? WHERE id = ?",
                       (row["price"], row["key_id"]))
            db.execute("INSERT INTO ledger VALUES (?, ?, 'release', ?, ?)",
                       (job_id, row["key_id"], row["price"], now))
        self._enqueue_webhook(db, job_id, now)

    def abandon_attempt(self, job_id: str, attempt: int, reason: str, max_attempts: int,
                        *, counts: bool = True) -> Job:
        with self._write() as db:
            row = self._processing(db, job_id, attempt)
            self._requeue_or_fail(db, job_id, row, reason, max_attempts, counts=counts)
        return self._must_get(job_id)

    def _requeue_or_fail(self, db: sqlite3.Connection, job_id: str, row: sqlite3.Row,
                         reason: str, max_attempts: int, *, counts: bool = True) -> None:
        # Attempts keep counting up (they tell stale writers apart); hand-backs by
        # workers shutting down are subtracted before comparing with the limit.
        lost = int(row["attempt"]) - int(row["handed_back"])
        if counts and lost >= max_attempts:
            self._fail(db, job_id, row, f"failed after {lost} attempts; last: {reason}", 500)
            return
        check_transition(JobState.PROCESSING, JobState.QUEUED)
        db.execute(
            "UPDATE jobs SET state = 'QUEUED', worker_id = NULL, lease_expires_at = NULL,"
            " progress = 0, last_error = ?, handed_back = handed_back + ? WHERE id = ?",
            (reason, 0 if counts else 1, job_id),
        )
        self._wakeup.signal()

    def recover_expired_leases(self, max_attempts: int) -> int:
        """Requeue (or fail) PROCESSING jobs whose worker stopped renewing its lease."""
        db = self._conn()
        now = self.now()
        expired = db.execute(
            "SELECT id, attempt FROM jobs WHERE state = 'PROCESSING' AND lease_expires_at < ?",
            (now,),
        ).fetchall()
        recovered = 0
        for job in expired:
            with self._write() as db:
                try:
                    row = self._processing(db, job["id"], job["attempt"])
                except StaleAttempt:
                    continue
                self._requeue_or_fail(db, job["id"], row, "worker lost (lease expired)",
                                      max_attempts)
                recovered += 1
        return recovered

    # -- voices ---------------------------------------------------------------
    def create_voice(self, key_id: int, name: str, pitch_hz: float | None,
                     sample: bytes) -> Voice:
        voice = Voice(new_voice_id(self._ids()), key_id, name, pitch_hz,
                      len(sample) / 2 / VOICE_RATE, self.now())
        with self._write() as db:
            db.execute("INSERT INTO voices VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (voice.id, key_id, name, pitch_hz, voice.duration_s, sample,
                        voice.created_at))
        return voice

    def list_voices(self, key_id: int) -> list[Voice]:
        rows = self._conn().execute(
            "SELECT id, key_id, name, pitch_hz, duration_s, created_at FROM voices"
            " WHERE key_id = ? ORDER BY created_at", (key_id,))
        return [Voice(*row) for row in rows]

    def get_voice(self, voice_id: str) -> Voice | None:
        row = self._conn().execute(
            "SELECT id, key_id, name, pitch_hz, duration_s, created_at FROM voices"
            " WHERE id = ?", (voice_id,)).fetchone()
        return None if row is None else Voice(*row)

    def voice_sample(self, voice_id: str) -> bytes:
        row = self._conn().execute("SELECT sample FROM voices WHERE id = ?",
                                   (voice_id,)).fetchone()
        if row is None:
            raise NotFound(f"no voice {voice_id!r}")
        return bytes(row["sample"])

    # -- webhooks -------------------------------------------------------------
    def _enqueue_webhook(self, db: sqlite3.Connection, job_id: str, now: float) -> None:
        """In the transaction that ends the job: the notification cannot be lost."""
        row = db.execute("SELECT key_id, webhook_url, state, output_key, error, canceled"
                         " FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None or not row["webhook_url"]:
            return
        event = {"request_id": job_id, "status": row["state"], "output_key": row["output_key"],
                 "error": row["error"], "canceled": bool(row["canceled"]), "at": now}
        db.execute("INSERT INTO webhooks (id, job_id, key_id, url, event, state, next_at)"
                   " VALUES (?, ?, ?, ?, ?, 'pending', ?)",
                   (webhook_id(job_id), job_id, row["key_id"], row["webhook_url"],
                    json.dumps(event), now))

    def claim_due_webhooks(self, limit: int, lease_s: float) -> list[WebhookDelivery]:
        now = self.now()
        with self._write() as db:
            rows = db.execute(
                "SELECT id, job_id, key_id, url, event, attempts FROM webhooks"
                " WHERE state = 'pending' AND next_at <= ? ORDER BY next_at, id LIMIT ?",
                (now, limit)).fetchall()
            for row in rows:  # no other API server sends it while this one tries
                db.execute("UPDATE webhooks SET next_at = ? WHERE id = ?",
                           (now + lease_s, row["id"]))
        return [WebhookDelivery(row["id"], row["job_id"], row["key_id"], row["url"],
                                json.loads(row["event"]), row["attempts"]) for row in rows]

    def record_webhook_attempt(self, delivery_id: str, outcome: str,
                               retry_at: float | None, delivered: bool) -> None:
        now = self.now()
        with self._write() as db:
            row = db.execute("SELECT job_id, attempts FROM webhooks WHERE id = ?",
                             (delivery_id,)).fetchone()
            if row is None:
                return
            attempt = int(row["attempts"]) + 1
            state = "delivered" if delivered else "pending" if retry_at is not None else "failed"
            db.execute("UPDATE webhooks SET attempts = ?, state = ?, next_at = ? WHERE id = ?",
                       (attempt, state, retry_at if retry_at is not None else now, delivery_id))
            db.execute("INSERT INTO webhook_log VALUES (?, ?, ?, ?, ?)",
                       (delivery_id, row["job_id"], now, attempt, outcome))

    def webhook_log(self, job_id: str) -> list[dict[str, Any]]:
        rows = self._conn().execute(
            "SELECT l.webhook_id, l.at, l.attempt, l.outcome, w.url, w.state FROM webhook_log l"
            " JOIN webhooks w ON w.id = l.webhook_id WHERE l.job_id = ? ORDER BY l.at",
            (job_id,))
        return [{"id": row["webhook_id"], "url": row["url"], "attempt": row["attempt"],
                 "at": row["at"], "outcome": row["outcome"], "state": row["state"]}
                for row in rows]

    def webhook_secret(self, key_id: int, new_secret: str) -> str:
        row = self._conn().execute("SELECT webhook_secret FROM keys WHERE id = ?",
                                   (key_id,)).fetchone()
        if row is not None and row["webhook_secret"]:
            return str(row["webhook_secret"])  # the usual case: no write needed
        with self._write() as db:
            db.execute("UPDATE keys SET webhook_secret = COALESCE(webhook_secret, ?)"
                       " WHERE id = ?", (new_secret, key_id))
            row = db.execute("SELECT webhook_secret FROM keys WHERE id = ?",
                             (key_id,)).fetchone()
        if row is None:
            raise NotFound(f"no key with id {key_id}")
        return str(row["webhook_secret"])

    def heartbeat_worker(self, worker_id: str, engine: str, job_id: str | None,
                         models: tuple[str, ...] | None = None) -> None:
        now = self.now()
        with self._write() as db:
            db.execute(
                "INSERT INTO workers (id, engine, job_id, started_at, last_seen, models)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET"
                " engine = excluded.engine, job_id = excluded.job_id,"
                " last_seen = excluded.last_seen, models = excluded.models",
                (worker_id, engine, job_id, now, now,
                 None if models is None else json.dumps(models)))

    def remove_worker(self, worker_id: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM workers WHERE id = ?", (worker_id,))

    def list_workers(self) -> list[WorkerRecord]:
        rows = self._conn().execute(
            "SELECT id, engine, job_id, started_at, last_seen, models FROM workers ORDER BY id")
        return [WorkerRecord(row["id"], row["engine"], row["job_id"], row["started_at"],
                             row["last_seen"],
                             None if row["models"] is None else tuple(json.loads(row["models"])))
                for row in rows]

    # -- retention ------------------------------------------------------------
    def sweep_expired(self) -> SweepReport:
        now = self.now()
        with self._write() as db:
            rows = db.execute(
                "SELECT id, output_key FROM jobs WHERE expires_at IS NOT NULL AND expires_at <= ?",
                (now,),
            ).fetchall()
            db.execute("DELETE FROM jobs WHERE expires_at IS NOT NULL AND expires_at <= ?", (now,))
            # Idempotency keys live as long as their job's result; webhook rows a day longer.
            db.execute("DELETE FROM idempotency WHERE job_id NOT IN (SELECT id FROM jobs)")
            db.execute("DELETE FROM webhooks WHERE state != 'pending' AND next_at < ?",
                       (now - 86400,))
            db.execute("DELETE FROM webhook_log WHERE at < ?", (now - 86400 - self.retention_s,))
            # A job's ledger outlives it by a day, as on Redis; so do workers gone silent.
            db.execute(
                "DELETE FROM ledger WHERE job_id IN (SELECT job_id FROM ledger"
                " WHERE job_id NOT IN (SELECT id FROM jobs) GROUP BY job_id HAVING MAX(at) <= ?)",
                (now - self.retention_s - LEDGER_GRACE_S,))
            db.execute("DELETE FROM workers WHERE last_seen < ?", (now - WORKER_FORGET_S,))
        outputs = tuple(row["output_key"] for row in rows if row["output_key"])
        return SweepReport(len(rows), outputs)

    def _must_get(self, job_id: str) -> Job:
        row = self._conn().execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?",
                                   (job_id,)).fetchone()
        if row is None:
            raise NotFound(f"job {job_id} vanished")
        return _job(row)


def _key(row: sqlite3.Row) -> ApiKey:
    models = None if row["models"] is None else tuple(json.loads(row["models"]))
    return ApiKey(row["id"], row["prefix"], row["name"], models, int(row["balance"]),
                  bool(row["revoked"]), row["created_at"], float(row["weight"]),
                  int(row["max_concurrent"]), int(row["max_queued"]))


def _job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"], key_id=row["key_id"], params=JobParams.from_json(json.loads(row["params"])),
        state=JobState(row["state"]), price=row["price"], hold=row["hold"],
        attempt=row["attempt"], created_at=row["created_at"], started_at=row["started_at"],
        completed_at=row["completed_at"], expires_at=row["expires_at"],
        progress=row["progress"], output_key=row["output_key"], error=row["error"],
        error_status=row["error_status"],
        metrics=json.loads(row["metrics"]) if row["metrics"] else {},
        canceled=bool(row["canceled"]), webhook_url=row["webhook_url"],
    )
