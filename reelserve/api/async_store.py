"""The one async boundary between the routes and the job store.

Routes never call the store; they await an ``AsyncStore``, which decides here, in
one place, how each call runs:

- **Redis, every call, and SQLite writes: a worker thread**, from a pool of
  ``api_store_threads`` kept for the store, under ``api_store_timeout_s``. Past the
  timeout the caller gets ``StoreTimeout`` (503 with Retry-After) and the event loop
  moves on; the thread is abandoned and finishes when the store answers, so a write
  that was under way still lands (a client that retries a submit with the same
  Idempotency-Key gets that job back, not a second one). The store keeps its own
  retries for brief outages (redis-py's backoff); this timeout bounds what a client
  waits for them. redis-py's asyncio client was the other choice: it would mean a
  second, async copy of every Redis read in the store, to keep in step with the Lua
  scripts, for a thread hop that costs tens of microseconds.
- **SQLite reads: inline on the event loop, the named fast path.** A read in WAL
  mode never waits for a writer's lock and takes microseconds, less than the hop to
  a thread, and the file is local, so it cannot hang on a network. A read that
  did stall (a dead disk) would stall the loop: the price of the fast path.

``/healthz`` touches none of this and answers while the store hangs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio

from reelserve import metrics
from reelserve.errors import StoreTimeout
from reelserve.jobs import ApiKey, Job, JobOrder, JobState, JobStore, Refusal, Submitted
from reelserve.jobs.records import SweepReport, Voice, WorkerRecord
from reelserve.jobs.sqlite import SqliteJobStore
from reelserve.ratelimit import LocalRateLimiter, RateLimiter, SharedRateLimiter

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class JobSighting:
    """A job as one store read saw it, with what its status body needs besides."""

    job: Job | None
    queue_position: int | None
    clock: float | None  # the store's clock, read only when the job is PROCESSING


class AsyncStore:
    """What the API may ask the job store, as coroutines that never block the loop."""

    def __init__(self, store: JobStore, limiter: RateLimiter, *, timeout_s: float,
                 threads: int) -> None:
        self._store = store
        self._limiter = limiter
        self._inline_reads = isinstance(store, SqliteJobStore)
        self._inline_limiter = isinstance(limiter, LocalRateLimiter)
        self._limit_off = isinstance(limiter, LocalRateLimiter | SharedRateLimiter) \
            and limiter.limit <= 0
        self._threads = anyio.CapacityLimiter(threads)
        self.timeout_s = timeout_s
        self.retry_after_s = max(1, math.ceil(timeout_s))

    async def _in_thread(self, call: Callable[..., T], *args: Any) -> T:
        try:
            with anyio.fail_after(self.timeout_s):
                return await anyio.to_thread.run_sync(call, *args, abandon_on_cancel=True,
                                                      limiter=self._threads)
        except TimeoutError:
            raise StoreTimeout(self.timeout_s, self.retry_after_s) from None

    async def _read(self, call: Callable[..., T], *args: Any) -> T:
        if self._inline_reads:
            return call(*args)
        return await self._in_thread(call, *args)

    # -- keys and submits -----------------------------------------------------
    async def find_key(self, key_hash: str) -> ApiKey | None:
        return await self._read(self._store.find_key, key_hash)

    async def get_key(self, key_id: int) -> ApiKey:
        return await self._read(self._store.get_key, key_id)

    async def count_submit(self, key_id: int) -> None:
        """Count one submit against the key's rate limit (shared ones live in Redis)."""
        if self._limit_off:
            return  # no thread hop (and on Redis no round trip) for a limit that is off
        if self._inline_limiter:
            self._limiter.hit(key_id)
        else:
            await self._in_thread(self._limiter.hit, key_id)

    async def submit_jobs(self, orders: Sequence[JobOrder]) -> list[Submitted | Refusal]:
        return await self._in_thread(self._store.submit_jobs, orders)

    # -- jobs -------------------------------------------------------------------
    async def get_job(self, job_id: str) -> Job | None:
        return await self._read(self._store.get_job, job_id)

    async def queue_position(self, job_id: str) -> int | None:
        return await self._read(self._store.queue_position, job_id)

    async def now(self) -> float:
        return await self._read(self._store.now)

    async def list_jobs(self, key_id: int, limit: int) -> list[Job]:
        return await self._read(self._store.list_jobs, key_id, limit)

    async def cancel_job(self, job_id: str) -> Job:
        return await self._in_thread(self._store.cancel_job, job_id)

    async def watch_jobs(self, job_ids: Sequence[str]) -> list[JobSighting]:
        """Each job as it is now, with its queue position and the store's clock: one hop."""
        return await self._read(self._sight_jobs, job_ids)

    def _sight_jobs(self, job_ids: Sequence[str]) -> list[JobSighting]:
        sightings = []
        clock: float | None = None
        for job_id in job_ids:
            job = self._store.get_job(job_id)
            position = None
            if job is not None and job.state is JobState.QUEUED:
                position = self._store.queue_position(job_id)
            if job is not None and clock is None and job.state is JobState.PROCESSING \
                    and job.started_at is not None and job.progress >= 0.02:
                clock = self._store.now()
            sightings.append(JobSighting(job, position, clock))
        return sightings

    # -- webhooks and voices ----------------------------------------------------
    async def webhook_log(self, job_id: str) -> list[dict[str, Any]]:
        return await self._read(self._store.webhook_log, job_id)

    async def webhook_secret(self, key_id: int, new_secret: str) -> str:
        return await self._in_thread(self._store.webhook_secret, key_id, new_secret)

    async def get_voice(self, voice_id: str) -> Voice | None:
        return await self._read(self._store.get_voice, voice_id)

    async def list_voices(self, key_id: int) -> list[Voice]:
        return await self._read(self._store.list_voices, key_id)

    async def create_voice(self, key_id: int, name: str, pitch_hz: float | None,
                           sample: bytes) -> Voice:
        return await self._in_thread(self._store.create_voice, key_id, name, pitch_hz, sample)

    # -- operations -------------------------------------------------------------
    @property
    def durability_warnings(self) -> tuple[str, ...]:
        """What the store found unsafe at startup (e.g. a Redis without AOF); no call."""
        return self._store.durability_warnings

    async def list_workers(self) -> list[WorkerRecord]:
        return await self._read(self._store.list_workers)

    async def sweep_expired(self) -> SweepReport:
        return await self._in_thread(self._store.sweep_expired)

    async def render_metrics(self) -> bytes:
        """The Prometheus text: reads metric files and the queue, so always off the loop."""
        return await self._in_thread(metrics.render_metrics, self._store)
