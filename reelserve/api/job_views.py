"""What a key sees of its jobs: ownership, the URLs handed out, status and result bodies."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from reelserve.api.async_store import AsyncStore, JobSighting
from reelserve.errors import RequestNotFound
from reelserve.fleet import CACHE_S, live_workers, waiting_reason
from reelserve.jobs import ApiKey, Job, JobState, WorkerRecord


class JobViews:
    def __init__(self, store: AsyncStore, base_url: str, worker_stale_s: float = 10.0) -> None:
        self.store = store
        self.base_url = base_url
        self.worker_stale_s = worker_stale_s
        self._live: list[WorkerRecord] = []
        self._live_read_at: float | None = None

    async def own_job(self, key: ApiKey, request_id: str) -> Job:
        """The job, when it exists and belongs to ``key``; another key's job is 404 too."""
        job = await self.store.get_job(request_id)
        if job is None or job.key_id != key.id:
            raise RequestNotFound(request_id)
        return job

    async def own_sighting(self, key: ApiKey, request_id: str) -> JobSighting:
        """``own_job`` and ``sight`` in one store call: one thread hop on Redis, not two.

        The status poll's read. Another key's job is 404 as in ``own_job``.
        """
        sighting = (await self.store.watch_jobs([request_id]))[0]
        job = sighting.job
        if job is None or job.key_id != key.id:
            raise RequestNotFound(request_id)
        if job.state is JobState.QUEUED:
            sighting = replace(sighting, waiting_for=await self.waiting_for(job.slug))
        return sighting

    def urls(self, request_id: str) -> dict[str, str]:
        status_url = f"{self.base_url}/v2/requests/{request_id}/status"
        return {"request_id": request_id, "status_url": status_url,
                "response_url": f"{self.base_url}/v2/requests/{request_id}",
                "poll_url": status_url}

    async def sight(self, job: Job) -> JobSighting:
        """``job`` with the store reads its status body needs (none once it has ended)."""
        position = clock = waiting_for = None
        if job.state is JobState.QUEUED:
            position = await self.store.queue_position(job.id)
            waiting_for = await self.waiting_for(job.slug)
        elif needs_clock(job):
            clock = await self.store.now()
        return JobSighting(job, position, clock, waiting_for)

    async def waiting_for(self, slug: str) -> str | None:
        """Why a queued job of ``slug`` cannot start: no live worker claims its model."""
        now = time.monotonic()
        if self._live_read_at is None or now - self._live_read_at >= CACHE_S:
            workers = await self.store.list_workers()
            self._live = live_workers(workers, await self.store.now(), self.worker_stale_s)
            self._live_read_at = now
        return None if any(worker.serves(slug) for worker in self._live) \
            else waiting_reason(slug)

    async def status_body(self, job: Job) -> dict[str, Any]:
        return status_body(await self.sight(job))

    async def result_body(self, job: Job) -> dict[str, Any]:
        if job.state is not JobState.COMPLETED:
            return await self.status_body(job)
        return self.completed_body(job)

    def completed_body(self, job: Job) -> dict[str, Any]:
        return {"request_id": job.id, "status": job.state.value,
                "output": self.output_url(job), "metrics": job.metrics}

    def output_url(self, job: Job) -> str | None:
        return None if job.output_key is None else f"{self.base_url}/outputs/{job.output_key}"


def status_body(sighting: JobSighting) -> dict[str, Any]:
    """The status body of a job as sighted; no store read."""
    job = sighting.job
    assert job is not None
    body: dict[str, Any] = {"request_id": job.id, "status": job.state.value,
                            "progress": round(job.progress, 4)}
    if job.state is JobState.QUEUED:
        body["queue_position"] = sighting.queue_position
        if sighting.waiting_for is not None:
            body["waiting_for"] = sighting.waiting_for
    if job.state is JobState.FAILED:
        body["error"] = job.error
        body["canceled"] = job.canceled
    body["eta_seconds"] = _eta_seconds(job, sighting.clock)
    body["created_at"] = _iso(job.created_at)
    body["started_at"] = _iso(job.started_at)
    body["completed_at"] = _iso(job.completed_at)
    return body


def needs_clock(job: Job) -> bool:
    """Whether the ETA of ``job`` needs the store's clock (a round trip on Redis)."""
    return job.state is JobState.PROCESSING and job.started_at is not None \
        and job.progress >= 0.02


def credits_text(millicredits: int) -> str:
    """The ``x-remaining-credits`` header's value."""
    return f"{millicredits / 1000:.3f}"


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")


def _eta_seconds(job: Job, now: float | None) -> float | None:
    """Seconds left, from the pace so far; None while queued or too early to tell."""
    if job.state.is_terminal:
        return 0.0
    if not needs_clock(job) or now is None or job.started_at is None:
        return None
    elapsed = max(0.0, now - job.started_at)
    return round(elapsed / job.progress * (1 - job.progress), 1)
