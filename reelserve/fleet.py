"""Which models the live workers serve, from their heartbeats.

A queued job whose model no live worker claims stays QUEUED (it is never refused:
a worker for it may start any time); its status says what it waits for, and
``/metrics`` and ``reelserve status`` count such jobs per model.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

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


class FleetView:
    """What a status poll needs: is any live worker claiming this model? (cached briefly)"""

    def __init__(self, store: JobStore, stale_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.stale_s = stale_s
        self.clock = clock
        self._live: list[WorkerRecord] = []
        self._read_at: float | None = None
        self._lock = threading.Lock()

    def waiting_for(self, slug: str) -> str | None:
        """Why a queued job of ``slug`` cannot start, or None when a live worker claims it."""
        live = self._live_workers()
        return None if any(worker.serves(slug) for worker in live) else waiting_reason(slug)

    def _live_workers(self) -> list[WorkerRecord]:
        now = self.clock()
        with self._lock:
            if self._read_at is None or now - self._read_at >= CACHE_S:
                self._live = live_workers(self.store.list_workers(), self.store.now(),
                                          self.stale_s)
                self._read_at = now
            return self._live
