"""One watcher per API process: clients waiting on jobs share its store reads.

A real SQLite store behind the real ``AsyncStore``; the only addition is a count
of the watcher's store hops.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path

from reelserve.api.async_store import AsyncStore, JobSighting
from reelserve.api.job_watcher import JobWatcher
from reelserve.catalog import get_model, parse_submit
from reelserve.jobs import JobOrder, JobState
from reelserve.jobs.sqlite import SqliteJobStore
from reelserve.ratelimit import LocalRateLimiter

from conftest import T2V

CLIENTS = 40


class CountingStore(AsyncStore):
    hops = 0

    async def watch_jobs(self, job_ids: Sequence[str]) -> list[JobSighting]:
        self.hops += 1
        return await super().watch_jobs(job_ids)


def test_many_clients_of_one_job_share_one_store_read_per_tick(tmp_path: Path) -> None:
    store = SqliteJobStore(tmp_path / "db.sqlite3", retention_s=60)
    key = store.create_key("h", "rs_test", name="", credits=10**9, models=None)
    params = parse_submit(get_model(T2V), {"prompt": "p", "duration": "3"})
    [submitted] = store.submit_jobs([JobOrder(key.id, params, 240)])
    assert not isinstance(submitted, Exception)
    job_id = submitted[0].id
    counting = CountingStore(store, LocalRateLimiter(0, 60), timeout_s=5, threads=4)
    watcher = JobWatcher(counting, interval_s=0.02)

    async def client() -> list[str]:
        seen = []
        async with watcher.subscribe(job_id) as subscription:
            while True:
                sighting = await subscription.next(5)
                assert sighting is not None and sighting.job is not None
                seen.append(sighting.job.state.value)
                if sighting.job.state.is_terminal:
                    return seen

    async def run() -> list[list[str]]:
        clients = [asyncio.create_task(client()) for _ in range(CLIENTS)]
        await asyncio.sleep(0.2)
        claimed = store.claim_next_job("w1", 30)
        assert claimed is not None
        await asyncio.sleep(0.2)
        store.complete_job(job_id, claimed.attempt, "out.mp4", {})
        results = await asyncio.gather(*clients)
        await watcher.close()
        return results

    started = time.monotonic()
    results = asyncio.run(run())
    elapsed = time.monotonic() - started
    for seen in results:
        assert seen[0] == JobState.QUEUED.value and seen[-1] == JobState.COMPLETED.value
    # Every client saw every change, yet the store was read once per tick, not per client.
    # (each tick sleeps 0.02 s; forty clients polling on their own would read 40 times a tick)
    assert counting.hops <= elapsed / 0.02 + 2, (counting.hops, elapsed)
    store.close()


def test_watcher_stops_when_the_last_client_leaves(tmp_path: Path) -> None:
    store = SqliteJobStore(tmp_path / "db.sqlite3", retention_s=60)
    counting = CountingStore(store, LocalRateLimiter(0, 60), timeout_s=5, threads=4)
    watcher = JobWatcher(counting, interval_s=0.01)

    async def run() -> int:
        async with watcher.subscribe("no-such-job") as subscription:
            sighting = await subscription.next(5)
            assert sighting is not None and sighting.job is None
        await asyncio.sleep(0.1)
        hops = counting.hops
        await asyncio.sleep(0.1)
        assert counting.hops == hops  # nobody watches: no reads
        await watcher.close()
        return hops

    assert asyncio.run(run()) >= 1
    store.close()
