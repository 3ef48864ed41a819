"""The queue under load, on SQLite and on Redis, with real worker processes and a no-op engine.

    .venv/bin/python bench/scale.py [--sections throughput,fairness,idle] [--jobs 300]
                                    [--redis redis://127.0.0.1:6379/0]

Workers are real `reelserve worker` processes with a no-op engine (it writes an
empty file), so what is measured is the queue: claim, hand the job to the engine
child, record the result. Every section compares its variants in the same run.

- throughput: ``--jobs`` jobs queued at once for 1, 2 and 4 workers; jobs/s until
  the last is COMPLETED, and overhead per job (workers x elapsed / jobs).
- fairness: 8 keys, one queueing 80% of ``--fair-jobs`` jobs, submitted in a
  shuffled order, drained by 2 workers, once in today's FIFO order and once with
  fair dispatch. Jain's fairness index of the per-key dispatches while every key
  still had work waiting; submit-to-claim latency of the 7 small keys' jobs
  (p50/p99); jobs/s.
- idle: CPU time of 4 idle workers over ``--idle-s`` seconds, polling every 20 ms
  (before) and blocked on the wake-up signal (after), as % of one core in total;
  then dispatch latency (submit to claim) of jobs submitted one at a time.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from reelserve.catalog import get_model, parse_submit
from reelserve.jobs import JobOrder, JobStore
from reelserve.jobs.backends import open_store
from reelserve.jobs.redis_layout import remove_prefix
from reelserve.keys import issue_key
from reelserve.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
T2V = "kling-3-standard-text2video"
CLOCK_TICK_S = 1 / os.sysconf("SC_CLK_TCK")


@contextmanager
def workers(settings: Settings, count: int, **env: str) -> Iterator[list[int]]:
    """``count`` worker processes on ``settings``' store; their pids once all reported in."""
    environ = {**os.environ, "PYTHONPATH": str(ROOT),
               "REELSERVE_DATA_DIR": str(settings.data_dir), "REELSERVE_STORE": settings.store,
               "REELSERVE_REDIS_PREFIX": settings.redis_prefix,
               "REELSERVE_REDIS_EPHEMERAL": "1",
               "REELSERVE_ENGINE": "bench.noop_engine:create_engine",
               **{f"REELSERVE_{name.upper()}": value for name, value in env.items()}}
    processes = [subprocess.Popen([sys.executable, "-m", "reelserve", "worker"], env=environ,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for _ in range(count)]
    store = open_store(settings.store_section)
    try:
        wait_for_workers(store, count)
        yield [process.pid for process in processes]
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        cleanup(settings, store)


def wait_for_workers(store: JobStore, count: int) -> None:
    deadline = time.monotonic() + 60
    while len(store.list_workers()) < count:
        if time.monotonic() > deadline:
            raise RuntimeError("workers did not start")
        time.sleep(0.1)
    time.sleep(0.5)  # past their first look at the queue


def wait_until_completed(store: JobStore, jobs: int) -> None:
    while store.queue_stats().by_state.get("COMPLETED", 0) < jobs:
        time.sleep(0.01)


def cleanup(settings: Settings, store: JobStore) -> None:
    if settings.store:
        import redis

        client = redis.Redis.from_url(settings.store)
        remove_prefix(client, settings.redis_prefix)
        client.close()
    store.close()


def settings_for(backend: str, data: Path, redis_url: str, **fields: object) -> Settings:
    return Settings(data_dir=data, store=redis_url if backend == "redis" else "",
                    redis_prefix=f"bench-{uuid.uuid4().hex[:8]}", redis_ephemeral=True,
                    **fields)  # type: ignore[arg-type]


def params() -> object:
    return parse_submit(get_model(T2V), {"prompt": "bench", "duration": "3"})


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# -- throughput -----------------------------------------------------------------
def throughput(backend: str, tmp: Path, redis_url: str, jobs: int) -> None:
    for count in (1, 2, 4):
        settings = settings_for(backend, tmp / f"{backend}-tp-{count}", redis_url)
        with workers(settings, count):
            store = open_store(settings.store_section)
            key = issue_key(store, credits=10**12).record
            started = time.perf_counter()
            store.submit_jobs([JobOrder(key.id, params(), 1) for _ in range(jobs)])  # type: ignore[arg-type]
            wait_until_completed(store, jobs)
            elapsed = time.perf_counter() - started
        print(f"throughput {backend:6} {count} worker(s): {jobs / elapsed:7.1f} jobs/s, "
              f"{count * elapsed / jobs * 1000:5.1f} ms per job", flush=True)


# -- fairness -------------------------------------------------------------------
def fairness(backend: str, tmp: Path, redis_url: str, jobs: int) -> None:
    for mode, fair in (("fifo", False), ("fair", True)):
        settings = settings_for(backend, tmp / f"{backend}-fair-{mode}", redis_url,
                                fair_dispatch=fair)
        with workers(settings, 2, fair_dispatch=str(fair)):
            store = open_store(settings.store_section)
            keys = [issue_key(store, credits=10**12, name=f"k{i}").record for i in range(8)]
            big = round(jobs * 0.8)
            owners = [keys[0].id] * big + [keys[1 + i % 7].id for i in range(jobs - big)]
            random.Random(13).shuffle(owners)
            started = time.perf_counter()
            outcomes = store.submit_jobs([JobOrder(key_id, params(), 1)  # type: ignore[arg-type]
                                          for key_id in owners])
            wait_until_completed(store, jobs)
            elapsed = time.perf_counter() - started
            done = [store.get_job(outcome[0].id) for outcome in outcomes
                    if isinstance(outcome, tuple)]
        claims = sorted((job.started_at or 0.0, job.key_id, job.started_at or 0.0,
                         job.created_at) for job in done if job is not None)
        report_fairness(backend, mode, keys[0].id, claims, jobs / elapsed)


def report_fairness(backend: str, mode: str, big_key: int,
                    claims: list[tuple[float, int, float, float]], jobs_per_s: float) -> None:
    last_claim: dict[int, float] = {}
    for at, key_id, _, _ in claims:
        last_claim[key_id] = at
    cutoff = min(last_claim.values())  # the first key to run out of waiting work
    per_key = {key_id: 0 for key_id in last_claim}
    for at, key_id, _, _ in claims:
        if at <= cutoff:
            per_key[key_id] += 1
    counts = list(per_key.values())
    jain = sum(counts) ** 2 / (len(counts) * sum(c * c for c in counts))
    small_waits = [(started - created) * 1000 for _, key_id, started, created in claims
                   if key_id != big_key]
    print(f"fairness   {backend:6} {mode}: Jain {jain:.3f} over {sum(counts)} dispatches "
          f"(per key {counts}); small keys' submit-to-claim p50 "
          f"{percentile(small_waits, 0.5):.0f} ms, p99 {percentile(small_waits, 0.99):.0f} ms;"
          f" {jobs_per_s:.0f} jobs/s", flush=True)


# -- idle -----------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its children (the engine child), in seconds."""
    pids = [pid]
    with suppress(OSError):
        pids += [int(child) for child in
                 Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    total = 0
    for each in pids:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total * CLOCK_TICK_S


def idle(backend: str, tmp: Path, redis_url: str, idle_s: float, samples: int) -> None:
    for mode, wakeups in (("polling every 20 ms", False), ("wake-ups", True)):
        settings = settings_for(backend, tmp / f"{backend}-idle-{wakeups}", redis_url)
        with workers(settings, 4, worker_wakeups=str(wakeups)) as pids:
            before = sum(map(cpu_seconds, pids))
            time.sleep(idle_s)
            used = sum(map(cpu_seconds, pids)) - before
            store = open_store(settings.store_section)
            key = issue_key(store, credits=10**12).record
            latencies = []
            for _ in range(samples):
                [outcome] = store.submit_jobs([JobOrder(key.id, params(), 1)])  # type: ignore[arg-type]
                assert isinstance(outcome, tuple)
                time.sleep(0.15)
                job = store.get_job(outcome[0].id)
                assert job is not None and job.started_at is not None
                latencies.append((job.started_at - job.created_at) * 1000)
        print(f"idle       {backend:6} {mode}: 4 idle workers used {used / idle_s * 100:.2f}% "
              f"of one core; dispatch p50 {statistics.median(latencies):.1f} ms, "
              f"p99 {percentile(latencies, 0.99):.1f} ms ({samples} jobs)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sections", default="throughput,fairness,idle")
    parser.add_argument("--backends", default="sqlite,redis")
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--fair-jobs", type=int, default=800)
    parser.add_argument("--idle-s", type=float, default=10.0)
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    sections = args.sections.split(",")
    print(f"no-op engine, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="reelserve-scale-") as folder:
        tmp = Path(folder)
        for backend in args.backends.split(","):
            if "throughput" in sections:
                throughput(backend, tmp, args.redis, args.jobs)
            if "fairness" in sections:
                fairness(backend, tmp, args.redis, args.fair_jobs)
            if "idle" in sections:
                idle(backend, tmp, args.redis, args.idle_s, args.samples)


if __name__ == "__main__":
    main()
