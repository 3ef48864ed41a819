"""Retention: finished jobs past their time are removed with their output files."""

from __future__ import annotations

import asyncio
import logging

import anyio

from reelserve.api.async_store import AsyncStore
from reelserve.input_blobs import InputBlobs
from reelserve.settings_sections import ApiSettings
from reelserve.storage import Storage

log = logging.getLogger("reelserve.api")


async def sweep_forever(settings: ApiSettings, store: AsyncStore, storage: Storage) -> None:
    """Sweep now and then for as long as the API runs."""
    interval = max(0.2, min(settings.sweep_interval_s, settings.retention_s / 2))
    while True:
        try:
            await sweep_once(store, storage)
        except Exception:  # the sweeper must outlive a bad pass
            log.exception("sweep failed")
        await asyncio.sleep(interval)


async def sweep_once(store: AsyncStore, storage: Storage) -> None:
    report = await store.sweep_expired()
    for key in report.deleted_outputs:
        await anyio.to_thread.run_sync(storage.delete, key)
    if report.expired_jobs:
        log.info("expired %d jobs", report.expired_jobs)
    await InputBlobs(storage, 0).sweep(lambda job_id: _known(store, job_id))


async def _known(store: AsyncStore, job_id: str) -> bool:
    return await store.get_job(job_id) is not None
