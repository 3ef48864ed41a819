"""What the store keeps about API keys and jobs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from reelserve.catalog import JobParams
from reelserve.errors import (
    IdempotencyMismatch,
    InsufficientCredits,
    InvalidParameter,
    KeyRevoked,
    QueueFull,
)
from reelserve.jobs.states import JobState


@dataclass(frozen=True)
class ApiKey:
    id: int
    prefix: str
    name: str
    models: tuple[str, ...] | None  # None: every model
    balance: int  # millicredits available now (open holds already taken off)
    revoked: bool
    created_at: float
    # Fair scheduling: dispatch share against other keys with work waiting, and caps
    # on jobs running (across all workers) and waiting; 0 means no cap.
    weight: float = 1.0
    max_concurrent: int = 0
    max_queued: int = 0

    def may_use(self, slug: str) -> bool:
        return self.models is None or slug in self.models

    def identity(self) -> KeyIdentity:
        return KeyIdentity(self.id, self.prefix, self.models)


@dataclass(frozen=True, slots=True)
class KeyIdentity:
    """What a submit needs of its key before the store write: who it is and what it may use.

    Never the balance, the revocation or the caps and weight: the write reads those
    itself, in its transaction. A key's models never change once it is made.
    """

    id: int
    prefix: str
    models: tuple[str, ...] | None  # None: every model

    def may_use(self, slug: str) -> bool:
        return self.models is None or slug in self.models


def check_key_limits(weight: float | None, max_concurrent: int | None,
                     max_queued: int | None) -> None:
    """Refuse a weight that is not positive or a negative cap, naming the field."""
    if weight is not None and not weight > 0:
        raise InvalidParameter("weight", f"must be more than 0, not {weight:g}")
    for name, cap in (("max_concurrent", max_concurrent), ("max_queued", max_queued)):
        if cap is not None and cap < 0:
            raise InvalidParameter(name, f"must be 0 (no cap) or more, not {cap}")


@dataclass(frozen=True)
class Job:
    id: str
    key_id: int
    params: JobParams
    state: JobState
    price: int  # millicredits
    hold: str  # held, captured or released
    attempt: int
    created_at: float
    started_at: float | None = None
    completed_at: float | None = None
    expires_at: float | None = None
    progress: float = 0.0
    output_key: str | None = None
    error: str | None = None
    error_status: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    canceled: bool = False
    webhook_url: str | None = None

    @property
    def slug(self) -> str:
        return self.params.slug


@dataclass(frozen=True)
class JobOrder:
    """A validated submit: which key pays what for which job."""

    key_id: int
    params: JobParams
    price: int  # millicredits
    webhook_url: str | None = None
    # An Idempotency-Key and a digest of the body it came with: the same pair gives
    # the same job back; the same key with another body is refused.
    idempotency_key: str | None = None
    body_digest: str = ""
    # A /v1 call whose client holds the connection: it goes ahead of the same key's
    # queued async jobs (never ahead of other keys'; docs/contract-decisions.md).
    sync: bool = False


# What the store answers for each order: the queued job and the key's balance
# left (for an idempotent replay, the earlier job), or the reason it was refused.
Submitted = tuple[Job, int]
Refusal = InsufficientCredits | IdempotencyMismatch | QueueFull | KeyRevoked


@dataclass(frozen=True)
class ClaimedJob:
    """A job a worker holds under a lease, for one attempt."""

    id: str
    attempt: int
    params: JobParams
    queued_for_s: float


@dataclass(frozen=True)
class QueueStats:
    depth: int
    oldest_age_s: float  # 0 when the queue is empty
    by_state: dict[str, int]


@dataclass(frozen=True)
class WorkerRecord:
    """A worker as its heartbeats describe it."""

    id: str
    engine: str
    job_id: str | None
    started_at: float
    last_seen: float
    models: tuple[str, ...] | None = None  # what it claims; None: every model

    def serves(self, slug: str) -> bool:
        return self.models is None or slug in self.models


# Retention beyond a job's own: its ledger entries stay a day after the job expires,
# and a worker silent for a day is forgotten.
LEDGER_GRACE_S = 86400.0
WORKER_FORGET_S = 86400.0


def new_job_id() -> str:
    return str(uuid.uuid4())


def new_voice_id(unique: str) -> str:
    """``voice_`` and the last 16 hex digits of a fresh job-style id."""
    return "voice_" + unique.replace("-", "")[-16:]


def webhook_id(job_id: str) -> str:
    """The id of a job's one webhook delivery, the same on every backend and retry."""
    return f"msg_{job_id}"


VOICE_RATE = 16_000  # voice samples are kept as 16 kHz mono int16 PCM


@dataclass(frozen=True)
class Voice:
    """A voice made from a sample, usable in ``voice_ids`` by the key that made it."""

    id: str
    key_id: int
    name: str
    pitch_hz: float | None
    duration_s: float
    created_at: float


@dataclass(frozen=True)
class WebhookDelivery:
    """One terminal-state notification for one job, retried until it lands or gives up."""

    id: str
    job_id: str
    key_id: int
    url: str
    event: dict[str, Any]  # what the job looked like when it ended
    attempts: int


@dataclass(frozen=True)
class SweepReport:
    expired_jobs: int
    deleted_outputs: tuple[str, ...]
