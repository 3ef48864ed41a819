"""Jobs per second through the queue, on SQLite and on Redis, for 1, 2 and 4 workers.

    .venv/bin/python bench/scale.py [--jobs 300] [--redis redis://127.0.0.1:6379/0]

Workers are real `reelserve worker` processes with a no-op engine (it writes an
empty file), so what is measured is the queue: claim, hand the job to the engine
child, record the result. For each backend and worker count the workers are
started and given time to report in, then ``--jobs`` jobs are queued at once and
the clock runs until the last one is COMPLETED. Overhead per job is
workers x elapsed / jobs: the time one worker spends per job.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from reelserve.catalog import get_model, parse_submit
from reelserve.jobs import JobOrder, JobStore
from reelserve.jobs.backends import open_store
from reelserve.keys import issue_key
from reelserve.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
T2V = "kling-3-standard-text2video"


def run_once(settings: Settings, workers: int, jobs: int) -> float:
    store = open_store(settings)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "REELSERVE_DATA_DIR": str(settings.data_dir),
           "REELSERVE_STORE": settings.store, "REELSERVE_REDIS_PREFIX": settings.redis_prefix,
           "REELSERVE_ENGINE": "bench.noop_engine:create_engine"}
    processes = [subprocess.Popen([sys.executable, "-m", "reelserve", "worker"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for _ in range(workers)]
    try:
        wait_for_workers(store, workers)
        key = issue_key(store, credits=10**12).record
        params = parse_submit(get_model(T2V), {"prompt": "bench", "duration": "3"})
        started = time.perf_counter()
        store.submit_jobs([JobOrder(key.id, params, 1) for _ in range(jobs)])
        while store.queue_stats().by_state.get("COMPLETED", 0) < jobs:
            time.sleep(0.01)
        return time.perf_counter() - started
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(30)
        cleanup(settings, store)


def wait_for_workers(store: JobStore, count: int) -> None:
    deadline = time.monotonic() + 60
    while len(store.list_workers()) < count:
        if time.monotonic() > deadline:
            raise RuntimeError("workers did not start")
        time.sleep(0.1)


def cleanup(settings: Settings, store: JobStore) -> None:
    if settings.store:
        import redis

        client = redis.Redis.from_url(settings.store)
        for key in client.scan_iter(f"{settings.redis_prefix}:*"):
            client.delete(key)
        client.close()
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    print(f"{args.jobs} jobs through the queue, no-op engine, on {os.cpu_count()} cores")
    print(f"{'backend':8} {'workers':>7} {'jobs/s':>8} {'overhead/job':>13}")
    with tempfile.TemporaryDirectory(prefix="reelserve-scale-") as tmp:
        for backend in ("sqlite", "redis"):
            for workers in (1, 2, 4):
                data = Path(tmp) / f"{backend}-{workers}"
                settings = Settings(data_dir=data, store=args.redis if backend == "redis" else "",
                                    redis_prefix=f"bench-{uuid.uuid4().hex[:8]}")
                elapsed = run_once(settings, workers, args.jobs)
                print(f"{backend:8} {workers:7d} {args.jobs / elapsed:8.1f} "
                      f"{workers * elapsed / args.jobs * 1000:10.1f} ms", flush=True)


if __name__ == "__main__":
    main()
