"""A worker driven without processes: a scripted engine handle at the engine seam.

The store is a real SQLite file and outputs a real directory; only the engine
child is replaced, by ``ScriptedEngine``, which answers as the child would
(ready or failed to load, progress, done) or dies mid-job on purpose.
"""

from __future__ import annotations

import threading
from collections import deque
from pathlib import Path

import pytest

from reelserve.catalog import get_model, parse_submit
from reelserve.catalog.models import IMAGE2VIDEO, TEXT2VIDEO
from reelserve.engine_process import ChildEvent, Done, LoadFailed, Progress, Ready, RunJob
from reelserve.errors import EngineUnavailable
from reelserve.jobs import ClaimedJob, JobOrder, JobState
from reelserve.jobs.sqlite import SqliteJobStore
from reelserve.keys import issue_key
from reelserve.settings import Settings
from reelserve.storage import LocalStorage
from reelserve.worker import Worker

OOM = LoadFailed("CUDA out of memory while loading the transformer")


class ScriptedEngine:
    """An engine handle whose child loads as ``starts`` say and runs jobs as told."""

    def __init__(self, starts: list[Ready | LoadFailed], die_on_jobs: int = 0) -> None:
        self.starts = deque(starts)
        self.die_on_jobs = die_on_jobs  # the first N jobs sent kill the "child"
        self.stop = threading.Event()
        self.alive = False
        self.exit_code: int | None = None
        self.started = 0
        self.sent: list[RunJob] = []
        self._events: deque[ChildEvent] = deque()

    def start(self) -> Ready | LoadFailed:
        self.started += 1
        outcome = self.starts.popleft()
        self.alive = isinstance(outcome, Ready)
        return outcome

    def send(self, job: RunJob) -> None:
        self.sent.append(job)
        if len(self.sent) <= self.die_on_jobs:
            self.alive, self.exit_code = False, -9
            return
        Path(job.output_path).write_bytes(b"mp4")
        self._events.extend([Progress(0.5), Done(0.01)])

    def next_event(self, timeout: float) -> ChildEvent | None:
        return self._events.popleft() if self._events else None

    def kill(self) -> None:
        self.alive = False

    def close(self) -> None:
        self.alive = False


@pytest.fixture
def store(tmp_path: Path) -> SqliteJobStore:
    return SqliteJobStore(tmp_path / "jobs.sqlite3", retention_s=60)


def _worker(tmp_path: Path, store: SqliteJobStore, engine: ScriptedEngine,
            **settings: object) -> Worker:
    config = Settings(data_dir=tmp_path, engine_reload_backoff_s=0.01, **settings)  # type: ignore[arg-type]
    return Worker(config.worker, store, LocalStorage(tmp_path / "outputs"), "w1", engine=engine)


def _claim(store: SqliteJobStore, slug: str = TEXT2VIDEO) -> ClaimedJob:
    key = issue_key(store, credits=1000).record
    body: dict[str, object] = {"prompt": "p", "duration": "3"}
    if slug == IMAGE2VIDEO:
        body["start_image_url"] = "https://example.com/a.png"
    store.submit_jobs([JobOrder(key.id, parse_submit(get_model(slug), body), 1)])
    claimed = store.claim_next_job("w1", lease_s=30)
    assert claimed is not None
    return claimed


def test_a_job_runs_to_completed_through_the_engine_handle(tmp_path: Path,
                                                           store: SqliteJobStore) -> None:
    engine = ScriptedEngine([Ready("scripted")])
    worker = _worker(tmp_path, store, engine)
    worker.start_engine()
    job = _claim(store)
    worker.run_job(job, threading.Event())
    done = store.get_job(job.id)
    assert done is not None and done.state is JobState.COMPLETED
    assert done.metrics["worker"] == "w1" and done.metrics["engine"] == "scripted"
    assert (tmp_path / "outputs" / str(done.output_key)).read_bytes() == b"mp4"


def test_a_failed_reload_after_a_crash_backs_off_and_retries(tmp_path: Path,
                                                             store: SqliteJobStore) -> None:
    engine = ScriptedEngine([Ready("scripted"), OOM, OOM, Ready("scripted"), ], die_on_jobs=1)
    worker = _worker(tmp_path, store, engine, engine_reload_attempts=5)
    worker.start_engine()
    job = _claim(store)
    worker.run_job(job, threading.Event())
    assert engine.started == 4  # the first load, two failed reloads, one that worked
    requeued = store.get_job(job.id)
    assert requeued is not None and requeued.state is JobState.QUEUED
    again = store.claim_next_job("w1", lease_s=30)
    assert again is not None and again.attempt == 2
    worker.run_job(again, threading.Event())
    assert store.get_job(job.id).state is JobState.COMPLETED  # type: ignore[union-attr]


def test_reloading_gives_up_after_its_tries_with_the_last_error(
        tmp_path: Path, store: SqliteJobStore) -> None:
    engine = ScriptedEngine([Ready("scripted"), OOM, OOM, OOM], die_on_jobs=1)
    worker = _worker(tmp_path, store, engine, engine_reload_attempts=3)
    worker.start_engine()
    with pytest.raises(EngineUnavailable, match="after 3 tries; last: CUDA out of memory"):
        worker.run_job(_claim(store), threading.Event())


def test_the_first_load_failing_is_reported_at_once(tmp_path: Path,
                                                    store: SqliteJobStore) -> None:
    worker = _worker(tmp_path, store, ScriptedEngine([OOM]))
    with pytest.raises(EngineUnavailable, match="out of memory"):
        worker.start_engine()


def test_a_worker_claims_what_both_its_list_and_its_engine_allow(
        tmp_path: Path, store: SqliteJobStore) -> None:
    i2v_engine = ScriptedEngine([Ready("i2v-only", (IMAGE2VIDEO,))])
    worker = _worker(tmp_path, store, i2v_engine)
    worker.start_engine()
    assert worker.models == (IMAGE2VIDEO,)
    pinned = _worker(tmp_path, store, ScriptedEngine([Ready("any")]),
                     worker_models=f"{TEXT2VIDEO}")
    pinned.start_engine()
    assert pinned.models == (TEXT2VIDEO,)
    clash = _worker(tmp_path, store, ScriptedEngine([Ready("i2v-only", (IMAGE2VIDEO,))]),
                    worker_models=TEXT2VIDEO)
    with pytest.raises(EngineUnavailable, match="runs only kling-3-standard-image2video"):
        clash.start_engine()
    with pytest.raises(EngineUnavailable, match="REELSERVE_WORKER_MODELS: unknown model"):
        _worker(tmp_path, store, ScriptedEngine([]), worker_models="kling-9")
