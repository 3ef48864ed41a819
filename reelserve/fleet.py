"""Which models the live workers serve, from their heartbeats.

A queued job whose model no live worker claims stays QUEUED (it is never refused:
a worker for it may start any time); its status says what it waits for, and
``/metrics`` and ``reelserve status`` count such jobs per model.
"""

from __future__ import annotations

from reelserve.jobs import JobStore, WorkerRecord

CACHE_S = 1.0  # status polls read the worker list at most this often per process


def waiting_reason(slug: str) -> str:
    return f"a worker for {slug}"


def live_workers(workers: list[WorkerRecord], now: float, stale_s: float) -> list[WorkerRecord]:
    return [worker for worker in workers if worker.last_seen >= now - stale_s]


def unserved_queued(store: JobStore, stale_s: float) -> dict[str, int]:
    """Queued jobs per model that no live worker claims."""
    live = live_workers(store.list_workers(), store.now(), stale_s)
    return {slug: count for slug, count in store.queued_by_model().items()
            if count > 0 and not any(worker.serves(slug) for worker in live)}
