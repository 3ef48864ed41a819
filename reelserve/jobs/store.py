"""The job-store protocol every backend implements (SQLite now, Redis later).

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
    # What may make this store lose data (a Redis without AOF); empty when nothing.
    durability_warnings: tuple[str, ...]

    # keys and credits
    def create_key(self, key_hash: str, prefix: str, *, name: str, credits: int,
                   models: tuple[str, ...] | None) -> ApiKey: ...
    def find_key(self, key_hash: str) -> ApiKey | None: ...
    def get_key(self, key_id: int) -> ApiKey: ...
    def list_keys(self) -> list[ApiKey]: ...
    def revoke_key(self, prefix: str) -> ApiKey: ...
    def add_credits(self, prefix: str, amount: int) -> ApiKey: ...
    def set_key_limits(self, prefix: str, *, weight: float | None = None,
                       max_concurrent: int | None = None,
                       max_queued: int | None = None) -> ApiKey:
        """Change the key's scheduling weight and caps (0: no cap); None leaves one as is."""
        ...
    def ledger(self, job_id: str) -> list[tuple[str, int]]: ...

    # submit and read
    def submit_jobs(self, orders: Sequence[JobOrder]) -> list[Submitted | Refusal]:
        """Queue the orders' jobs and hold their prices, in one transaction (group commit).

        Each order answers its job and the key's balance left, or is refused on its
        own; a refused order holds nothing.
        An order with an Idempotency-Key seen before with the same body answers the
        earlier job, holding nothing again.
        """
        ...
    def get_job(self, job_id: str) -> Job | None:
        """The job, or None when unknown or expired."""
        ...
    def queue_position(self, job_id: str) -> int | None:
        """The job's place in the fair dispatch order (1: next), or None unless QUEUED."""
        ...
    def queued_by_model(self) -> dict[str, int]:
        """Queued jobs per model slug."""
        ...
    def queue_stats(self) -> QueueStats: ...
    def list_jobs(self, key_id: int, limit: int) -> list[Job]:
        """The key's most recent jobs that have not expired, newest first."""
        ...
    def cancel_job(self, job_id: str) -> Job:
        """End a QUEUED or PROCESSING job as FAILED ("canceled") and release its hold.

        Raises ``RequestNotFound`` or ``Conflict`` (already ended). A worker running
        it sees ``attempt_is_current`` turn false and stops.
        """
        ...
    def attempt_is_current(self, job_id: str, attempt: int) -> bool: ...

    # workers
    def claim_next_job(self, worker_id: str, lease_s: float,
                       models: tuple[str, ...] | None = None) -> ClaimedJob | None:
        """Take the next job in fair order that the worker may run, under a lease.

        Keys take turns by weight, each key's jobs oldest first; ``models`` limits
        the jobs to those slugs (None: any); keys at their max-concurrent cap wait.
        """
        ...
    def wait_for_work(self, timeout_s: float, models: tuple[str, ...] | None = None) -> None:
        """Block an idle worker until a job may be waiting for it, or ``timeout_s``."""
        ...
    def renew_lease(self, job_id: str, attempt: int, lease_s: float, progress: float) -> None: ...
    def complete_job(self, job_id: str, attempt: int, output_key: str,
                     metrics: dict[str, Any]) -> Job: ...
    def fail_job(self, job_id: str, attempt: int, error: str, error_status: int) -> Job: ...
    def abandon_attempt(self, job_id: str, attempt: int, reason: str, max_attempts: int,
                        *, counts: bool = True) -> Job:
        """Put a job back in the queue, or fail it once ``max_attempts`` have been lost.

        ``counts=False`` is a hand-back by a worker shutting down: the job goes back
        to the queue and that attempt does not count against ``max_attempts``.
        """
        ...
    def recover_expired_leases(self, max_attempts: int) -> int: ...
    def heartbeat_worker(self, worker_id: str, engine: str, job_id: str | None,
                         models: tuple[str, ...] | None = None) -> None: ...

    # voices: samples a key uploaded, named in voice_ids
    def create_voice(self, key_id: int, name: str, pitch_hz: float | None,
                     sample: bytes) -> Voice:
        """Keep a voice; ``sample`` is 16 kHz mono int16 PCM."""
        ...
    def list_voices(self, key_id: int) -> list[Voice]: ...
    def get_voice(self, voice_id: str) -> Voice | None: ...
    def voice_sample(self, voice_id: str) -> bytes: ...

    # webhooks: one delivery per job with a webhook_url, queued when the job ends
    def claim_due_webhooks(self, limit: int, lease_s: float) -> list[WebhookDelivery]: ...
    def record_webhook_attempt(self, delivery_id: str, outcome: str,
                               retry_at: float | None, delivered: bool) -> None: ...
    def webhook_log(self, job_id: str) -> list[dict[str, Any]]: ...
    def webhook_secret(self, key_id: int, new_secret: str) -> str:
        """The key's signing secret; ``new_secret`` becomes it if it has none yet."""
        ...
    def remove_worker(self, worker_id: str) -> None: ...
    def list_workers(self) -> list[WorkerRecord]: ...

    # retention
    def sweep_expired(self) -> SweepReport: ...
    def now(self) -> float: ...
    def close(self) -> None: ...
