"""Open the job store a settings object names."""

from __future__ import annotations

from reelserve.jobs.sqlite import SqliteJobStore
from reelserve.jobs.store import JobStore
from reelserve.settings import Settings


def open_store(settings: Settings) -> JobStore:
    return SqliteJobStore(settings.db_path, retention_s=settings.retention_s)
