"""A worker claims jobs, runs each in its engine child process, and records the outcome.

While a job runs the worker renews the job's lease every ``heartbeat_s``. If the
child dies mid-job the attempt goes back to the queue (up to ``max_attempts``);
if the worker itself dies, its lease runs out and another worker takes the job.
A worker that finds its lease taken away stops the child and throws its output away.
On SIGTERM a worker stops claiming, lets the job in flight finish within
``shutdown_grace_s`` and hands it back to the queue past that.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass

from reelserve import metrics
from reelserve.engine_process import (
    STORAGE_FAULT,
    Done,
    EngineProcess,
    Failed,
    LoadFailed,
    Progress,
    RunJob,
)
from reelserve.engines.base import VoiceSample
from reelserve.errors import EngineUnavailable, StaleAttempt, StorageError
from reelserve.jobs import ClaimedJob, JobState, JobStore
from reelserve.logs import job_fields
from reelserve.settings import Settings
from reelserve.storage import Storage

log = logging.getLogger("reelserve.worker")
# How often a running job's state is read back, so a cancel stops it this fast
# (the engine then stops within one step: a frame, a denoising step).
CANCEL_CHECK_S = 0.25
PROGRESS_WRITE_S = 1.0


@dataclass
class _Attempt:
    job: ClaimedJob
    output_key: str
    progress: float = 0.0
    next_heartbeat: float = 0.0
    next_state_check: float = 0.0
    progress_written: float = 0.0


class Worker:
    def __init__(self, settings: Settings, store: JobStore, storage: Storage,
                 worker_id: str | None = None) -> None:
        self.settings = settings
        self.store = store
        self.storage = storage
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self.engine = EngineProcess(settings, settings.engine)
        self.engine_name = settings.engine
        self._next_beat = 0.0

    def start_engine(self) -> None:
        started_at = time.monotonic()
        started = self.engine.start()
        if isinstance(started, LoadFailed):
            raise EngineUnavailable(started.error)
        self.engine_name = started.engine
        load_s = time.monotonic() - started_at
        metrics.ENGINE_LOAD.labels(self.engine_name).observe(load_s)
        log.info("engine %s ready in %.2f s", self.engine_name, load_s,
                 extra={"engine": self.engine_name, "worker": self.worker_id})

    def run(self, stop: threading.Event) -> None:
        """Claim and run jobs until ``stop`` is set (see ``run_job`` for a job in flight)."""
        self.start_engine()
        next_recovery = 0.0
        try:
            while not stop.is_set():
                self._beat(None)
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
            with contextlib.suppress(Exception):  # leaving anyway; readiness ages it out
                self.store.remove_worker(self.worker_id)

    def run_job(self, job: ClaimedJob, stop: threading.Event) -> None:
        """Run one claimed job to its end.

        When ``stop`` is set mid-job (SIGTERM), the job may still finish within
        ``shutdown_grace_s``; past that it is handed back to the queue at once,
        without waiting for its lease to run out and without counting the attempt.
        """
        attempt = _Attempt(job, self.storage.new_key())
        attempt.next_heartbeat = time.monotonic() + self.settings.heartbeat_s
        fields = job_fields(job.id, job.params.slug, job.attempt, self.engine_name)
        metrics.QUEUE_WAIT.labels(self.engine_name).observe(job.queued_for_s)
        log.info("running", extra=fields)
        try:
            output_path = self.storage.staging_path(attempt.output_key)
        except StorageError as error:
            self._storage_failed(attempt, error)
            return
        self.engine.send(RunJob(job.id, job.params.to_json(), str(output_path),
                                self._voices(job)))
        grace_ends: float | None = None
        while True:
            event = self.engine.next_event(timeout=min(self.settings.heartbeat_s, CANCEL_CHECK_S))
            if isinstance(event, Progress):
                attempt.progress = event.fraction
                # Progress reaches the store at most once a second (with the lease), so
                # pollers see it move; the lease alone is renewed every third of it.
                attempt.next_heartbeat = min(attempt.next_heartbeat,
                                             attempt.progress_written + PROGRESS_WRITE_S)
            elif isinstance(event, Done | Failed):
                self._record(attempt, event)
                return
            elif event is None and not self.engine.alive:
                self._child_died(attempt)
                return
            self._beat(job.id)
            if time.monotonic() >= attempt.next_heartbeat and not self._heartbeat(attempt):
                return
            if not self._still_wanted(attempt):
                return
            if stop.is_set() and grace_ends is None:
                grace_ends = time.monotonic() + self.settings.shutdown_grace_s
                log.info("shutting down; finishing within %g s", self.settings.shutdown_grace_s,
                         extra=fields)
            if grace_ends is not None and time.monotonic() >= grace_ends:
                self._give_back(attempt, "worker shut down mid-job")
                return

    def _voices(self, job: ClaimedJob) -> tuple[VoiceSample, ...]:
        """The samples of the job's ``voice_ids``, in order; a deleted voice is skipped."""
        samples = []
        for voice_id in job.params.voice_ids:
            voice = self.store.get_voice(voice_id)
            if voice is not None:
                samples.append(VoiceSample(voice.id, voice.name, voice.pitch_hz,
                                           self.store.voice_sample(voice.id)))
        return tuple(samples)

    def _still_wanted(self, attempt: _Attempt) -> bool:
        """False once the job was canceled (or taken away): then stop the engine now."""
        now = time.monotonic()
        if now < attempt.next_state_check:
            return True
        attempt.next_state_check = now + CANCEL_CHECK_S
        if self.store.attempt_is_current(attempt.job.id, attempt.job.attempt):
            return True
        log.info("stopping: the job was canceled or taken over", extra=self._fields(attempt))
        self._stop_child_job(attempt)
        return False

    def _beat(self, job_id: str | None) -> None:
        """Tell the store this worker is alive (what /readyz and `reelserve status` read)."""
        now = time.monotonic()
        if now >= self._next_beat:
            self.store.heartbeat_worker(self.worker_id, self.engine_name, job_id)
            self._next_beat = now + self.settings.worker_heartbeat_s

    def _heartbeat(self, attempt: _Attempt) -> bool:
        try:
            self.store.renew_lease(attempt.job.id, attempt.job.attempt, self.settings.lease_s,
                                   attempt.progress)
        except StaleAttempt:
            log.warning("lost the lease", extra=self._fields(attempt))
            self._stop_child_job(attempt)
            return False
        attempt.progress_written = time.monotonic()
        attempt.next_heartbeat = attempt.progress_written + self.settings.heartbeat_s
        return True

    def _fields(self, attempt: _Attempt) -> dict[str, object]:
        job = attempt.job
        return job_fields(job.id, job.params.slug, job.attempt, self.engine_name)

    def _record(self, attempt: _Attempt, event: Done | Failed) -> None:
        job, fields = attempt.job, self._fields(attempt)
        try:
            if isinstance(event, Failed) and event.status == STORAGE_FAULT:
                raise StorageError(event.error)
            if isinstance(event, Done):
                self._publish(attempt)
                details = {"queue_time_s": round(job.queued_for_s, 3),
                           "run_time_s": round(event.run_s, 3), "engine": self.engine_name,
                           "attempts": job.attempt, "worker": self.worker_id}
                done = self.store.complete_job(job.id, job.attempt, attempt.output_key, details)
                metrics.RUN_TIME.labels(self.engine_name).observe(event.run_s)
                metrics.JOBS_COMPLETED.labels(job.params.slug, self.engine_name).inc()
                metrics.CREDITS_CAPTURED.labels(job.params.slug).inc(done.price / 1000)
                log.info("completed in %.2f s", event.run_s, extra=fields)
            else:
                self.store.fail_job(job.id, job.attempt, event.error, event.status)
                reason = "input" if event.status == 400 else "engine"
                metrics.JOBS_FAILED.labels(job.params.slug, reason).inc()
                log.warning("failed: %s", event.error, extra=fields)
        except StorageError as error:
            self._storage_failed(attempt, error)
        except StaleAttempt:
            log.warning("late result refused (the attempt lost its lease)", extra=fields)
            self.storage.delete(attempt.output_key)

    def _publish(self, attempt: _Attempt) -> None:
        """Move the finished file to its storage; ``StorageError`` when that fails."""
        try:
            self.storage.publish(attempt.output_key)
        except StorageError:
            raise
        except Exception as error:  # storage is outside our control: retry the job
            raise StorageError(f"{type(error).__name__}: {error}") from error

    def _storage_failed(self, attempt: _Attempt, error: StorageError) -> None:
        """An infrastructure fault: the attempt runs again, the client reads "storage error"."""
        log.error("storage error: %s", error.detail, extra=self._fields(attempt))
        with contextlib.suppress(Exception):
            self.storage.delete(attempt.output_key)
        self._abandon(attempt, error.message, counts=True)

    def _child_died(self, attempt: _Attempt) -> None:
        reason = f"engine process died (exit code {self.engine.exit_code})"
        log.error(reason, extra=self._fields(attempt))
        self.engine.kill()
        self.storage.delete(attempt.output_key)
        self._abandon(attempt, reason, counts=True)
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
        log.warning("handing the job back: %s", reason, extra=self._fields(attempt))
        self._stop_child_job(attempt)
        self._abandon(attempt, reason, counts=False)

    def _abandon(self, attempt: _Attempt, reason: str, *, counts: bool) -> None:
        try:
            job = self.store.abandon_attempt(attempt.job.id, attempt.job.attempt, reason,
                                             self.settings.max_attempts, counts=counts)
        except StaleAttempt:  # someone else already moved it on
            return
        if job.state is JobState.FAILED:
            metrics.JOBS_FAILED.labels(attempt.job.params.slug, "attempts").inc()
        else:
            metrics.ATTEMPTS_LOST.labels("shutdown" if not counts else "engine_died").inc()
