"""A worker claims jobs, runs each in its engine child process, and records the outcome.

While a job runs the worker renews the job's lease every ``lease_renew_s``. If the
child dies mid-job the attempt goes back to the queue (up to ``max_attempts``);
if the worker itself dies, its lease runs out and another worker takes the job.
A worker that finds its lease taken away stops the child and throws its output away.
On SIGTERM a worker stops claiming, lets the job in flight finish within
``shutdown_grace_s`` and hands it back to the queue past that.

An idle worker blocks on the store's wake-up signal instead of polling. It claims
only the models it was given (``worker_models``) that its engine declares it runs.
The engine handle and the clock are passed in, so a test can drive a worker
without processes; lease and liveness timing live in ``worker_lease``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable

from reelserve import metrics
from reelserve.catalog import MODELS
from reelserve.engine_process import (
    STORAGE_FAULT,
    Done,
    EngineHandle,
    EngineProcess,
    Failed,
    LoadFailed,
    Progress,
    Ready,
    RunJob,
)
from reelserve.engines.base import VoiceSample
from reelserve.errors import EngineUnavailable, StaleAttempt, StorageError
from reelserve.jobs import ClaimedJob, JobState, JobStore
from reelserve.logs import job_fields
from reelserve.settings_sections import WorkerSettings
from reelserve.storage import Storage
from reelserve.worker_lease import AttemptWatch, Liveness, Verdict, WorkerTiming

log = logging.getLogger("reelserve.worker")
MAX_RELOAD_BACKOFF_S = 60.0


class Worker:
    def __init__(self, settings: WorkerSettings, store: JobStore, storage: Storage,
                 worker_id: str | None = None, *, engine: EngineHandle | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.store = store
        self.storage = storage
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self.engine: EngineHandle = engine or EngineProcess(settings.engine)
        self.engine_name = settings.engine.name
        self.clock = clock
        self.timing = WorkerTiming.from_settings(settings)
        self.liveness = Liveness(store, self.worker_id, self.timing, clock)
        self.wanted = _known_models(settings.models)
        self.models = self.wanted  # narrowed to what the engine declares once it is up
        self._stop = threading.Event()

    def start_engine(self) -> None:
        """Start the engine child; ``EngineUnavailable`` when it cannot load."""
        started = self._load_engine()
        if isinstance(started, LoadFailed):
            raise EngineUnavailable(started.error)

    def _load_engine(self) -> Ready | LoadFailed:
        started_at = self.clock()
        started = self.engine.start()
        if isinstance(started, LoadFailed):
            return started
        self.engine_name = started.engine
        self.models = _models_to_claim(self.wanted, started.models, started.engine)
        load_s = self.clock() - started_at
        metrics.ENGINE_LOAD.labels(self.engine_name).observe(load_s)
        log.info("engine %s ready in %.2f s", self.engine_name, load_s,
                 extra={"engine": self.engine_name, "worker": self.worker_id})
        return started

    def _reload_engine(self) -> None:
        """Start the engine again after it died, backing off while loading fails.

        A reload can fail for a passing reason (memory the dead child still held, a
        busy GPU), so it is retried with a doubling wait before the worker gives up.
        """
        self.engine.kill()
        delay = self.settings.reload_backoff_s
        for attempt in range(1, self.settings.reload_attempts + 1):
            started = self._load_engine()
            if isinstance(started, Ready):
                return
            if attempt == self.settings.reload_attempts:
                raise EngineUnavailable(f"the engine could not be reloaded after {attempt} "
                                        f"tries; last: {started.error}")
            log.error("reloading the engine failed (try %d of %d): %s; next try in %.1f s",
                      attempt, self.settings.reload_attempts, started.error, delay,
                      extra={"engine": self.engine_name, "worker": self.worker_id})
            self.engine.kill()
            if self._stop.wait(delay):
                return  # shutting down: the run loop sees the stop and leaves
            delay = min(delay * 2, MAX_RELOAD_BACKOFF_S)

    def run(self, stop: threading.Event) -> None:
        """Claim and run jobs until ``stop`` is set (see ``run_job`` for a job in flight)."""
        self._stop = stop
        self.start_engine()
        next_recovery = 0.0
        try:
            while not stop.is_set():
                self.liveness.beat(self.engine_name, None, self.models)
                now = self.clock()
                if now >= next_recovery:
                    self.store.recover_expired_leases(self.settings.max_attempts)
                    next_recovery = now + max(self.settings.lease_s / 2, 0.1)
                job = self.store.claim_next_job(self.worker_id, self.settings.lease_s,
                                                self.models)
                if job is None:
                    self._wait_for_work(stop)
                    continue
                self.run_job(job, stop)
        finally:
            self.engine.close()
            with contextlib.suppress(Exception):  # leaving anyway; readiness ages it out
                self.store.remove_worker(self.worker_id)

    def _wait_for_work(self, stop: threading.Event) -> None:
        if self.settings.wakeups:
            self.store.wait_for_work(self.settings.idle_wait_s, self.models)
        else:
            stop.wait(self.settings.poll_interval_s)

    def run_job(self, job: ClaimedJob, stop: threading.Event) -> None:
        """Run one claimed job to its end.

        When ``stop`` is set mid-job (SIGTERM), the job may still finish within
        ``shutdown_grace_s``; past that it is handed back to the queue at once,
        without waiting for its lease to run out and without counting the attempt.
        """
        self._stop = stop
        output_key = self.storage.new_key()
        watch = AttemptWatch(self.store, job, self.timing, self.clock)
        fields = job_fields(job.id, job.params.slug, job.attempt, self.engine_name)
        metrics.QUEUE_WAIT.labels(self.engine_name).observe(job.queued_for_s)
        log.info("running", extra=fields)
        try:
            output_path = self.storage.staging_path(output_key)
        except StorageError as error:
            self._storage_failed(job, output_key, error)
            return
        self.engine.send(RunJob(job.id, job.params.to_json(), str(output_path),
                                self._voices(job)))
        while True:
            event = self.engine.next_event(
                timeout=min(self.timing.renew_every_s, self.timing.cancel_check_s))
            if isinstance(event, Progress):
                watch.on_progress(event.fraction)
            elif isinstance(event, Done | Failed):
                self._record(job, output_key, event)
                return
            elif event is None and not self.engine.alive:
                self._child_died(job, output_key)
                return
            self.liveness.beat(self.engine_name, job.id, self.models)
            if not self._carry_on(watch.check(stop.is_set()), job, output_key):
                return

    def _carry_on(self, verdict: Verdict, job: ClaimedJob, output_key: str) -> bool:
        """Act on what the attempt's watch says; False once the attempt is over."""
        fields = self._fields(job)
        if verdict is Verdict.CONTINUE:
            return True
        if verdict is Verdict.GRACE_STARTED:
            log.info("shutting down; finishing within %g s", self.timing.shutdown_grace_s,
                     extra=fields)
            return True
        if verdict is Verdict.LEASE_LOST:
            log.warning("lost the lease", extra=fields)
            self._stop_child_job(output_key)
        elif verdict is Verdict.CANCELED:
            log.info("stopping: the job was canceled or taken over", extra=fields)
            self._stop_child_job(output_key)
        else:
            log.warning("handing the job back: worker shut down mid-job", extra=fields)
            self._stop_child_job(output_key)
            self._abandon(job, "worker shut down mid-job", counts=False)
        return False

    def _voices(self, job: ClaimedJob) -> tuple[VoiceSample, ...]:
        """The samples of the job's ``voice_ids``, in order; a deleted voice is skipped."""
        samples = []
        for voice_id in job.params.voice_ids:
            voice = self.store.get_voice(voice_id)
            if voice is not None:
                samples.append(VoiceSample(voice.id, voice.name, voice.pitch_hz,
                                           self.store.voice_sample(voice.id)))
        return tuple(samples)

    def _fields(self, job: ClaimedJob) -> dict[str, object]:
        return job_fields(job.id, job.params.slug, job.attempt, self.engine_name)

    def _record(self, job: ClaimedJob, output_key: str, event: Done | Failed) -> None:
        fields = self._fields(job)
        try:
            if isinstance(event, Failed) and event.status == STORAGE_FAULT:
                raise StorageError(event.error)
            if isinstance(event, Done):
                self._publish(output_key)
                details = {"queue_time_s": round(job.queued_for_s, 3),
                           "run_time_s": round(event.run_s, 3), "engine": self.engine_name,
                           "attempts": job.attempt, "worker": self.worker_id}
                done = self.store.complete_job(job.id, job.attempt, output_key, details)
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
            self._storage_failed(job, output_key, error)
        except StaleAttempt:
            log.warning("late result refused (the attempt lost its lease)", extra=fields)
            self.storage.delete(output_key)

    def _publish(self, output_key: str) -> None:
        """Move the finished file to its storage; ``StorageError`` when that fails."""
        try:
            self.storage.publish(output_key)
        except StorageError:
            raise
        except Exception as error:  # storage is outside our control: retry the job
            raise StorageError(f"{type(error).__name__}: {error}") from error

    def _storage_failed(self, job: ClaimedJob, output_key: str, error: StorageError) -> None:
        """An infrastructure fault: the attempt runs again, the client reads "storage error"."""
        log.error("storage error: %s", error.detail, extra=self._fields(job))
        with contextlib.suppress(Exception):
            self.storage.delete(output_key)
        self._abandon(job, error.message, counts=True)

    def _child_died(self, job: ClaimedJob, output_key: str) -> None:
        reason = f"engine process died (exit code {self.engine.exit_code})"
        log.error(reason, extra=self._fields(job))
        self.engine.kill()
        self.storage.delete(output_key)
        self._abandon(job, reason, counts=True)
        self._reload_engine()

    def _stop_child_job(self, output_key: str) -> None:
        """Interrupt the child's current job and wait for it to answer (or kill it)."""
        self.engine.stop.set()
        deadline = self.clock() + max(self.settings.lease_s, 5.0)
        while self.clock() < deadline:
            event = self.engine.next_event(timeout=0.2)
            if isinstance(event, Done | Failed):
                break
            if event is None and not self.engine.alive:
                break
        else:
            self.engine.kill()
        self.storage.delete(output_key)
        if not self.engine.alive:
            self._reload_engine()

    def _abandon(self, job: ClaimedJob, reason: str, *, counts: bool) -> None:
        try:
            moved = self.store.abandon_attempt(job.id, job.attempt, reason,
                                               self.settings.max_attempts, counts=counts)
        except StaleAttempt:  # someone else already moved it on
            return
        if moved.state is JobState.FAILED:
            metrics.JOBS_FAILED.labels(job.params.slug, "attempts").inc()
        else:
            metrics.ATTEMPTS_LOST.labels("shutdown" if not counts else "engine_died").inc()


def _known_models(slugs: tuple[str, ...] | None) -> tuple[str, ...] | None:
    unknown = [slug for slug in slugs or () if slug not in MODELS]
    if unknown:
        raise EngineUnavailable(f"REELSERVE_WORKER_MODELS: unknown model(s) {', '.join(unknown)};"
                                f" known: {', '.join(MODELS)}")
    return slugs


def _models_to_claim(wanted: tuple[str, ...] | None, declared: tuple[str, ...] | None,
                     engine: str) -> tuple[str, ...] | None:
    """The models both the worker's list and its engine allow (None: every model)."""
    if declared is None:
        return wanted
    models = tuple(slug for slug in (wanted or tuple(MODELS)) if slug in declared)
    if not models:
        raise EngineUnavailable(f"the {engine} engine runs only {', '.join(declared)}, none of"
                                f" the models this worker was given ({', '.join(wanted or ())})")
    return models
