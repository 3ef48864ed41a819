"""The job-store protocol every backend implements (SQLite and Redis).

The store owns the queue, the job records, the API keys and the credit ledger,
so that a credit hold and the job it pays for change in one transaction.
Times are the store's clock; every write from a worker names its attempt so a
worker that lost its lease cannot overwrite a newer attempt.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from reelserve.jobs.records import (
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
)


class JobStore(Protocol):
    """The contract: what every backend does, pinned by ``tests/store_contract``.

    Times are ``now()``, the store's clock. Ids, balances (millicredits), states and
    bodies must read the same on every backend; the contract suite compares SQLite
    and Redis after every step of random sequences.
    """

    # What may make this store lose data (a Redis without AOF), one line each;
    # empty when nothing. /readyz and the metrics show it.
    durability_warnings: tuple[str, ...]

    # keys and credits
    def create_key(self, key_hash: str, prefix: str, *, name: str, credits: int,
                   models: tuple[str, ...] | None) -> ApiKey:
        """Keep a key by the hash of its secret; ids count up from 1 in creation order."""
        ...
    def find_key(self, key_hash: str) -> ApiKey | None:
        """The key with this hash (revoked or not), or None."""
        ...
    def get_key(self, key_id: int) -> ApiKey:
        """The key; raises ``NotFound``."""
        ...
    def list_keys(self) -> list[ApiKey]:
        """Every key, in creation (id) order."""
        ...
    def revoke_key(self, prefix: str) -> ApiKey:
        """Revoke the one key ``prefix`` names (see ``add_credits``)."""
        ...
    def add_credits(self, prefix: str, amount: int) -> ApiKey:
        """Add ``amount`` millicredits to the one key ``prefix`` names.

        A key is named when ``prefix`` starts its shown prefix or its shown prefix
        starts ``prefix`` (a whole key pasted): literally, with case. None or
        several raise ``NotFound`` saying which.
        """
        ...
    def set_key_limits(self, prefix: str, *, weight: float | None = None,
                       max_concurrent: int | None = None,
                       max_queued: int | None = None) -> ApiKey:
        """Change the key's scheduling weight and caps (0: no cap); None leaves one as is."""
        ...
    def ledger(self, job_id: str) -> list[tuple[str, int]]:
        """The job's credit movements: ``hold``, then ``capture`` or ``release``, each
        at most once. Kept ``LEDGER_GRACE_S`` beyond the job; [] when unknown."""
        ...

    # submit and read
    def submit_jobs(self, orders: Sequence[JobOrder]) -> list[Submitted | Refusal]:
        """Queue the orders' jobs and hold their prices, in one transaction (group commit).

        Each order answers its job and the key's balance left, or is refused on its
        own; a refused order holds nothing. Every order takes an id from the id
        source, refused or not.
        An order with an Idempotency-Key seen before with the same body answers the
        earlier job, holding nothing again, while that job has not expired; with
        another body it is refused (``IdempotencyMismatch``). An order whose key is
        revoked or gone is refused before anything else (``KeyRevoked``), a replay
        included: revocation is exact at the write, whatever the API checked before.
        """
        ...
    def get_job(self, job_id: str) -> Job | None:
        """The job, or None when unknown or expired (``expires_at <= now()``)."""
        ...
    def queue_position(self, job_id: str) -> int | None:
        """1 for the next job a worker claims in fair order (caps and routing aside);
        None unless the job is QUEUED."""
        ...
    def queue_stats(self) -> QueueStats:
        """Queue depth and the oldest queued job's wait; ``by_state`` counts every job
        the store keeps, an expired one included until ``sweep_expired`` removes it."""
        ...
    def queued_by_model(self) -> dict[str, int]:
        """Queued jobs per model slug."""
        ...
    def list_jobs(self, key_id: int, limit: int) -> list[Job]:
        """The key's most recent jobs that have not expired, newest first."""
        ...
    def cancel_job(self, job_id: str) -> Job:
        """End a QUEUED or PROCESSING job as FAILED ("canceled") and release its hold.

        Raises ``RequestNotFound`` (unknown or expired) or ``Conflict`` (already
        ended). A worker running it sees ``attempt_is_current`` turn false and stops;
        its later writes are stale.
        """
        ...
    def attempt_is_current(self, job_id: str, attempt: int) -> bool:
        """True while the job is PROCESSING under this attempt."""
        ...

    # workers
    def claim_next_job(self, worker_id: str, lease_s: float,
                       models: tuple[str, ...] | None = None) -> ClaimedJob | None:
        """Move the next queued job in fair order that the worker may run to PROCESSING
        under a new attempt and a lease of ``lease_s``; None when there is none.

        Keys take turns by weight, each key's jobs oldest first; ``models`` limits
        the jobs to those slugs (None: any); keys at their max-concurrent cap wait.
        """
        ...
    def wait_for_work(self, timeout_s: float, models: tuple[str, ...] | None = None) -> None:
        """Block an idle worker until a job may be waiting for it, or ``timeout_s``."""
        ...
    def renew_lease(self, job_id: str, attempt: int, lease_s: float, progress: float) -> None:
        """Extend the lease to ``now() + lease_s``; progress only goes up. Raises
        ``StaleAttempt`` unless the attempt is current."""
        ...
    def complete_job(self, job_id: str, attempt: int, output_key: str,
                     metrics: dict[str, Any]) -> Job:
        """End the job COMPLETED, capture its hold, queue its webhook, start retention.

        A retry by the attempt that already completed it with the same output
        answers the job again, capturing nothing twice; any other late write
        raises ``StaleAttempt``.
        """
        ...
    def fail_job(self, job_id: str, attempt: int, error: str, error_status: int) -> Job:
        """End the job FAILED and release its hold; a retry with the same error
        answers the job again, otherwise a late write raises ``StaleAttempt``."""
        ...
    def abandon_attempt(self, job_id: str, attempt: int, reason: str, max_attempts: int,
                        *, counts: bool = True) -> Job:
        """Put a job back in the queue, or fail it once ``max_attempts`` have been lost.

        ``counts=False`` is a hand-back by a worker shutting down: the job goes back
        to the queue and that attempt does not count against ``max_attempts``.
        A requeued job keeps its place in the queue.
        """
        ...
    def recover_expired_leases(self, max_attempts: int) -> int:
        """``abandon_attempt`` for every running job whose lease ended; answers how many."""
        ...
    def heartbeat_worker(self, worker_id: str, engine: str, job_id: str | None,
                         models: tuple[str, ...] | None = None) -> None:
        """Record that the worker is alive (its first heartbeat is its start)."""
        ...

    # voices: samples a key uploaded, named in voice_ids
    def create_voice(self, key_id: int, name: str, pitch_hz: float | None,
                     sample: bytes) -> Voice:
        """Keep a voice; ``sample`` is 16 kHz mono int16 PCM. Ids are ``voice_`` and
        16 hex digits."""
        ...
    def list_voices(self, key_id: int) -> list[Voice]:
        """The key's voices, oldest first."""
        ...
    def get_voice(self, voice_id: str) -> Voice | None: ...
    def voice_sample(self, voice_id: str) -> bytes:
        """The sample as given; raises ``NotFound``."""
        ...

    # webhooks: one delivery per job with a webhook_url, queued when the job ends
    def claim_due_webhooks(self, limit: int, lease_s: float) -> list[WebhookDelivery]:
        """Due deliveries (by due time, then id), each leased for ``lease_s`` so that
        no other sender tries it meanwhile. A delivery's id is ``webhook_id(job)``;
        its event is the job's state, output key, error, canceled flag and end time."""
        ...
    def record_webhook_attempt(self, delivery_id: str, outcome: str,
                               retry_at: float | None, delivered: bool) -> None:
        """Log one try; the delivery is then delivered, due again at ``retry_at``, or
        failed for good. An unknown id is ignored."""
        ...
    def webhook_log(self, job_id: str) -> list[dict[str, Any]]:
        """Every try of the job's delivery: id, url, attempt, at, outcome and the
        delivery's state now."""
        ...
    def webhook_secret(self, key_id: int, new_secret: str) -> str:
        """The key's signing secret; ``new_secret`` becomes it if it has none yet."""
        ...
    def remove_worker(self, worker_id: str) -> None:
        """Forget a worker (it stopped); an unknown id is ignored."""
        ...
    def list_workers(self) -> list[WorkerRecord]:
        """Known workers, by id."""
        ...

    # retention
    def sweep_expired(self) -> SweepReport:
        """Delete expired jobs (answering their output files, for the caller to
        delete), ledgers ``LEDGER_GRACE_S`` after their job, and workers silent for
        ``WORKER_FORGET_S``."""
        ...
    def now(self) -> float:
        """The store's clock (Redis' TIME on Redis), in seconds."""
        ...
    def close(self) -> None:
        """Let go of connections; a later call opens them again."""
        ...
