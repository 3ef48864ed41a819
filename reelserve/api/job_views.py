"""What a key sees of its jobs: ownership, the URLs handed out, status and result bodies."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from reelserve.api.async_store import AsyncStore, JobSighting
from reelserve.errors import RequestNotFound
from reelserve.jobs import ApiKey, Job, JobState


class JobViews:
    def __init__(self, store: AsyncStore, base_url: str) -> None:
        self.store = store
        self.base_url = base_url

    async def own_job(self, key: ApiKey, request_id: str) -> Job:
        """The job, when it exists and belongs to ``key``; another key's job is 404 too."""
        job = await self.store.get_job(request_id)
        if job is None or job.key_id != key.id:
            raise RequestNotFound(request_id)
        return job

    def urls(self, request_id: str) -> dict[str, str]:
        status_url = f"{self.base_url}/v2/requests/{request_id}/status"
        return {"request_id": request_id, "status_url": status_url,
                "response_url": f"{self.base_url}/v2/requests/{request_id}",
                "poll_url": status_url}

    async def sight(self, job: Job) -> JobSighting:
        """``job`` with the store reads its status body needs (none once it has ended)."""
        position = clock = None
        if job.state is JobState.QUEUED:
            position = await self.store.queue_position(job.id)
        elif needs_clock(job):
            clock = await self.store.now()
        return JobSighting(job, position, clock)

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
