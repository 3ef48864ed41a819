"""One watcher per API process for every job some client is waiting on.

``/v1`` calls wait for their job to end and SSE streams follow theirs. Instead of
each client asking the store every 50 ms, one task reads every watched job in
one store hop per tick and wakes the clients whose job changed; a job watched by
a hundred clients costs the store what one client would. The watcher runs only
while someone watches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from reelserve.api.async_store import AsyncStore, JobSighting
from reelserve.errors import StoreTimeout

log = logging.getLogger("reelserve.api")
WATCH_INTERVAL_S = 0.05


@dataclass
class _Watched:
    clients: int = 0
    version: int = 0
    sighting: JobSighting | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class Subscription:
    """One client's view of a watched job: ``next`` returns each new sighting once."""

    def __init__(self, entry: _Watched) -> None:
        self._entry = entry
        self._seen = 0

    async def next(self, timeout_s: float | None = None) -> JobSighting | None:
        """The job as next seen changed, or None when ``timeout_s`` passes first."""
        entry = self._entry
        if entry.version == self._seen:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await entry.changed.wait()
            if entry.version == self._seen:
                return None
        self._seen = entry.version
        return entry.sighting


class JobWatcher:
    def __init__(self, store: AsyncStore, interval_s: float = WATCH_INTERVAL_S) -> None:
        self.store = store
        self.interval_s = interval_s
        self._watched: dict[str, _Watched] = {}
        self._task: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def subscribe(self, job_id: str) -> AsyncIterator[Subscription]:
        entry = self._watched.setdefault(job_id, _Watched())
        entry.clients += 1
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._watch())
        try:
            yield Subscription(entry)
        finally:
            entry.clients -= 1
            if entry.clients == 0 and self._watched.get(job_id) is entry:
                del self._watched[job_id]

    async def _watch(self) -> None:
        while self._watched:
            job_ids = list(self._watched)
            try:
                sightings = await self.store.watch_jobs(job_ids)
            except StoreTimeout:  # clients keep their last sighting; try again next tick
                sightings = []
            except Exception:  # the watcher must outlive a store error; its clients wait on
                log.exception("watching jobs failed")
                sightings = []
            for job_id, sighting in zip(job_ids, sightings, strict=False):
                entry = self._watched.get(job_id)
                if entry is not None and _changed(entry.sighting, sighting):
                    entry.sighting = sighting
                    entry.version += 1
                    entry.changed.set()
                    entry.changed = asyncio.Event()
            await asyncio.sleep(self.interval_s)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _changed(before: JobSighting | None, after: JobSighting) -> bool:
    if before is None:
        return True
    old, new = before.job, after.job
    if old is None or new is None:
        return old is not new
    return (old.state, old.progress, old.attempt, before.queue_position) != \
        (new.state, new.progress, new.attempt, after.queue_position)
