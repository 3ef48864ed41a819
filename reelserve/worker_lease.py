"""What a worker keeps track of in time: its liveness, and each attempt's lease.

``AttemptWatch`` renews a running job's lease (sooner when progress moved, so
pollers see it), reads the job back to notice a cancel, and runs the shutdown
grace once the worker is asked to stop. ``Liveness`` writes the worker's own
heartbeat. Both take the store and a clock, so they are tested without processes.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from reelserve.errors import StaleAttempt
from reelserve.jobs import ClaimedJob
from reelserve.settings_sections import WorkerSettings

Clock = Callable[[], float]
# How often a running job's state is read back, so a cancel stops it this fast
# (the engine then stops within one step: a frame, a denoising step).
CANCEL_CHECK_S = 0.25
PROGRESS_WRITE_S = 1.0


@dataclass(frozen=True)
class WorkerTiming:
    lease_s: float
    renew_every_s: float
    shutdown_grace_s: float
    heartbeat_every_s: float
    cancel_check_s: float = CANCEL_CHECK_S
    progress_write_s: float = PROGRESS_WRITE_S

    @classmethod
    def from_settings(cls, settings: WorkerSettings) -> WorkerTiming:
        return cls(settings.lease_s, settings.lease_renew_s, settings.shutdown_grace_s,
                   settings.heartbeat_s)


class LeaseStore(Protocol):
    def renew_lease(self, job_id: str, attempt: int, lease_s: float, progress: float) -> None: ...
    def attempt_is_current(self, job_id: str, attempt: int) -> bool: ...


class HeartbeatStore(Protocol):
    def heartbeat_worker(self, worker_id: str, engine: str, job_id: str | None,
                         models: tuple[str, ...] | None = None) -> None: ...


class Verdict(enum.Enum):
    CONTINUE = "continue"
    GRACE_STARTED = "grace started"  # the worker was asked to stop; the job may finish
    LEASE_LOST = "lease lost"  # another worker holds the job now
    CANCELED = "canceled"  # canceled, or taken over: the attempt is no longer current
    GRACE_OVER = "grace over"  # hand the job back now


class AttemptWatch:
    """Lease renewal, cancel checks and the shutdown grace of one attempt."""

    def __init__(self, store: LeaseStore, job: ClaimedJob, timing: WorkerTiming,
                 clock: Clock) -> None:
        self.store = store
        self.job = job
        self.timing = timing
        self.clock = clock
        self.progress = 0.0
        self.progress_written = 0.0
        self.next_renewal = clock() + timing.renew_every_s
        self.next_state_check = 0.0
        self.grace_ends: float | None = None

    def on_progress(self, fraction: float) -> None:
        """Progress reaches the store at most once per ``progress_write_s``, with the lease."""
        self.progress = fraction
        self.next_renewal = min(self.next_renewal,
                                self.progress_written + self.timing.progress_write_s)

    def check(self, stopping: bool) -> Verdict:
        """Do what is due now; anything but CONTINUE or GRACE_STARTED ends the attempt."""
        now = self.clock()
        if now >= self.next_renewal:
            try:
                self.store.renew_lease(self.job.id, self.job.attempt, self.timing.lease_s,
                                       self.progress)
            except StaleAttempt:
                return Verdict.LEASE_LOST
            self.progress_written = now
            self.next_renewal = now + self.timing.renew_every_s
        if now >= self.next_state_check:
            self.next_state_check = now + self.timing.cancel_check_s
            if not self.store.attempt_is_current(self.job.id, self.job.attempt):
                return Verdict.CANCELED
        if stopping and self.grace_ends is None:
            self.grace_ends = now + self.timing.shutdown_grace_s
            return Verdict.GRACE_STARTED if self.timing.shutdown_grace_s > 0 \
                else Verdict.GRACE_OVER
        if self.grace_ends is not None and now >= self.grace_ends:
            return Verdict.GRACE_OVER
        return Verdict.CONTINUE


class Liveness:
    """The worker's heartbeat (what /readyz, `reelserve status` and routing read)."""

    def __init__(self, store: HeartbeatStore, worker_id: str, timing: WorkerTiming,
                 clock: Clock) -> None:
        self.store = store
        self.worker_id = worker_id
        self.timing = timing
        self.clock = clock
        self.next_beat = 0.0

    def beat(self, engine: str, job_id: str | None, models: tuple[str, ...] | None) -> None:
        now = self.clock()
        if now >= self.next_beat:
            self.store.heartbeat_worker(self.worker_id, engine, job_id, models)
            self.next_beat = now + self.timing.heartbeat_every_s
