"""A worker claims jobs, runs each in its engine child process, and records the outcome.

While a job runs the worker renews the job's lease every ``heartbeat_s``. If the
child dies mid-job the attempt goes back to the queue (up to ``max_attempts``);
if the worker itself dies, its lease runs out and another worker takes the job.
A worker that finds its lease taken away stops the child and throws its output away.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass

from reelserve.engine_process import (
    Done,
    EngineProcess,
    Failed,
    LoadFailed,
    Progress,
    RunJob,
)
from reelserve.errors import EngineUnavailable, StaleAttempt
from reelserve.jobs import ClaimedJob, JobStore
from reelserve.settings import Settings
from reelserve.storage import LocalStorage

log = logging.getLogger("reelserve.worker")


@dataclass
class _Attempt:
    job: ClaimedJob
    output_key: str
    progress: float = 0.0
    next_heartbeat: float = 0.0


class Worker:
    def __init__(self, settings: Settings, store: JobStore, storage: LocalStorage,
                 worker_id: str | None = None) -> None:
        self.settings = settings
        self.store = store
        self.storage = storage
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self.engine = EngineProcess(settings, settings.engine)
        self.engine_name = settings.engine

    def start_engine(self) -> None:
        started = self.engine.start()
        if isinstance(started, LoadFailed):
            raise EngineUnavailable(started.error)
        self.engine_name = started.engine

    def run(self, stop: threading.Event) -> None:
        """Claim and run jobs until ``stop`` is set."""
        self.start_engine()
        next_recovery = 0.0
        try:
            while not stop.is_set():
                now = time.monotonic()
                if now >= next_recovery:
                    self.store.recover_expired_leases(self.settings.max_attempts)
                    next_recovery = now + max(self.settings.lease_s / 2, 0.1)
                job = self.store.claim_next_job(self.worker_id, self.settings.lease_s)
                if job is None:
                    stop.wait(self.settings.poll_interval_s)
                    continue
                self.run_job(job, stop)
        finally:
            self.engine.close()

    def run_job(self, job: ClaimedJob, stop: threading.Event) -> None:
        attempt = _Attempt(job, self.storage.new_key())
        attempt.next_heartbeat = time.monotonic() + self.settings.heartbeat_s
        log.info("running %s attempt %d", job.id, job.attempt)
        self.engine.send(RunJob(job.id, job.params.to_json(),
                                str(self.storage.path_for(attempt.output_key))))
        while True:
            event = self.engine.next_event(timeout=min(self.settings.heartbeat_s, 0.5))
            if isinstance(event, Progress):
                attempt.progress = event.fraction
            elif isinstance(event, Done | Failed):
                self._record(attempt, event)
                return
            elif event is None and not self.engine.alive:
                self._child_died(attempt)
                return
            if time.monotonic() >= attempt.next_heartbeat and not self._heartbeat(attempt):
                return
            if stop.is_set():
                self._give_back(attempt, "worker shut down mid-job")
                return

    def _heartbeat(self, attempt: _Attempt) -> bool:
        try:
            self.store.renew_lease(attempt.job.id, attempt.job.attempt, self.settings.lease_s,
                                   attempt.progress)
        except StaleAttempt:
            log.warning("lost the lease on %s attempt %d", attempt.job.id, attempt.job.attempt)
            self._stop_child_job(attempt)
            return False
        attempt.next_heartbeat = time.monotonic() + self.settings.heartbeat_s
        return True

    def _record(self, attempt: _Attempt, event: Done | Failed) -> None:
        job = attempt.job
        try:
            if isinstance(event, Done):
                metrics = {"queue_time_s": round(job.queued_for_s, 3),
                           "run_time_s": round(event.run_s, 3), "engine": self.engine_name,
                           "attempts": job.attempt, "worker": self.worker_id}
                self.store.complete_job(job.id, job.attempt, attempt.output_key, metrics)
            else:
                self.store.fail_job(job.id, job.attempt, event.error, event.status)
        except StaleAttempt:
            log.warning("late result for %s attempt %d refused", job.id, job.attempt)
            self.storage.delete(attempt.output_key)

    def _child_died(self, attempt: _Attempt) -> None:
        reason = f"engine process died (exit code {self.engine.exit_code})"
        log.error("%s during %s attempt %d", reason, attempt.job.id, attempt.job.attempt)
        self.engine.kill()
        self.storage.delete(attempt.output_key)
        with contextlib.suppress(StaleAttempt):  # someone else already moved it on
            self.store.abandon_attempt(attempt.job.id, attempt.job.attempt, reason,
                                       self.settings.max_attempts)
        self.start_engine()

    def _stop_child_job(self, attempt: _Attempt) -> None:
        """Interrupt the child's current job and wait for it to answer (or kill it)."""
        self.engine.stop.set()
        deadline = time.monotonic() + max(self.settings.lease_s, 5.0)
        while time.monotonic() < deadline:
            event = self.engine.next_event(timeout=0.2)
            if isinstance(event, Done | Failed):
                break
            if event is None and not self.engine.alive:
                break
        else:
            self.engine.kill()
        self.storage.delete(attempt.output_key)
        if not self.engine.alive:
            self.engine.kill()
            self.start_engine()

    def _give_back(self, attempt: _Attempt, reason: str) -> None:
        self._stop_child_job(attempt)
        with contextlib.suppress(StaleAttempt):  # someone else already moved it on
            self.store.abandon_attempt(attempt.job.id, attempt.job.attempt, reason,
                                       self.settings.max_attempts)
