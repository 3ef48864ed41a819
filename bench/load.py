"""Sustained load: many clients submit and poll against one API process, on loopback.

    .venv/bin/python -m bench.load [--clients 200] [--seconds 60] [--keys 20]

One `reelserve serve --workers 1` runs the no-op engine (``bench/noop_engine.py``)
with the default rate limit (120 submits per key per 60 s). ``--clients`` asyncio
clients share ``--keys`` keys; each submits a job, polls its status every
``POLL_S`` until it is COMPLETED, and starts again. A 429 is the limit doing its
job: the client waits (``Retry-After``, at most ``MAX_WAIT_S``) and tries again. Anything
else that is not a 200 (or a transport error) is counted as an error.

The run is bounded: ``--seconds`` of load, at most ``MAX_REQUESTS`` requests, a
10 s timeout per request. The API process's RSS is read from /proc every
second; the report gives poll latency percentiles, status counts, and the RSS
spread over the second half of the run. Everything connects to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.api import ROOT, free_port, stop, wait_healthy
from reelserve.jobs.backends import open_store
from reelserve.keys import issue_key
from reelserve.settings import Settings

T2V = "kling-3-standard-text2video"
JOB = {"prompt": "a lighthouse in fog", "duration": "3", "generate_audio": False}
POLL_S = 0.5
MAX_REQUESTS = 1_000_000
REQUEST_TIMEOUT_S = 10.0
# Below uvicorn's 5 s keep-alive timeout, so that a client never sends on a
# connection the server is closing at that moment (a ReadError that is no error).
MAX_WAIT_S = 3.0


@dataclass
class Tally:
    statuses: collections.Counter[str] = field(default_factory=collections.Counter)
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    poll_ms: list[float] = field(default_factory=list)
    completed: int = 0
    requests: int = 0


@contextmanager
def api_server(data_dir: Path) -> Iterator[tuple[str, int]]:
    """`reelserve serve` with one worker on the no-op engine; yields (base URL, API pid)."""
    port = free_port()
    env = {**os.environ, "REELSERVE_DATA_DIR": str(data_dir), "REELSERVE_PORT": str(port),
           "REELSERVE_ENGINE": "bench.noop_engine:create_engine", "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "reelserve", "serve", "--workers", "1"], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base_url, process)
        yield base_url, process.pid
    finally:
        stop(process)


def cpu_s(pid: int) -> float:
    """User plus system CPU seconds the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


async def sample_rss(pid: int, samples: list[tuple[float, float]], end: float) -> None:
    started = time.monotonic()
    while time.monotonic() < end:
        samples.append((time.monotonic() - started, rss_mib(pid)))
        await asyncio.sleep(1.0)


async def send(http: httpx.AsyncClient, tally: Tally, method: str, url: str,
               key: str, **options: object) -> httpx.Response | None:
    tally.requests += 1
    try:
        response = await http.request(method, url, headers={"x-api-key": key},
                                      **options)  # type: ignore[arg-type]
    except httpx.HTTPError as error:
        tally.errors[f"{method} {type(error).__name__}"] += 1
        return None
    tally.statuses[f"{method} {response.status_code}"] += 1
    if response.status_code not in (200, 429):
        tally.errors[f"{method} {response.status_code}"] += 1
    return response


async def one_client(http: httpx.AsyncClient, key: str, tally: Tally, end: float) -> None:
    while time.monotonic() < end and tally.requests < MAX_REQUESTS:
        response = await send(http, tally, "POST", f"/v2/{T2V}", key, json=JOB)
        if response is None or response.status_code != 200:
            wait = float(response.headers.get("retry-after", 1)) if response is not None else 1
            await asyncio.sleep(min(wait, MAX_WAIT_S, max(0.0, end - time.monotonic())))
            continue
        status_url = f"/v2/requests/{response.json()['request_id']}/status"
        while time.monotonic() < end:
            await asyncio.sleep(POLL_S)
            started = time.perf_counter()
            polled = await send(http, tally, "GET", status_url, key)
            if polled is None or polled.status_code != 200:
                break
            tally.poll_ms.append((time.perf_counter() - started) * 1000)
            if polled.json()["status"] == "COMPLETED":
                tally.completed += 1
                break


async def run_load(base_url: str, pid: int, keys: list[str], clients: int,
                   seconds: float) -> tuple[Tally, list[tuple[float, float]]]:
    tally, samples = Tally(), []
    end = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base_url, limits=limits,
                                 timeout=REQUEST_TIMEOUT_S) as http:
        sampler = asyncio.create_task(sample_rss(pid, samples, end))
        await asyncio.wait_for(
            asyncio.gather(*(one_client(http, keys[i % len(keys)], tally, end)
                             for i in range(clients))),
            timeout=seconds + 2 * REQUEST_TIMEOUT_S)
        await sampler
    return tally, samples


def report(tally: Tally, samples: list[tuple[float, float]], clients: int, keys: int,
           seconds: float) -> str:
    cuts = statistics.quantiles(tally.poll_ms, n=100)
    half = [rss for at, rss in samples if at >= seconds / 2]
    spread = (max(half) - min(half)) / min(half) * 100
    statuses = ", ".join(f"{name}: {count}" for name, count in sorted(tally.statuses.items()))
    errors = ", ".join(f"{n}: {c}" for n, c in sorted(tally.errors.items())) or "none"
    return "\n".join([
        f"- {clients} clients on {keys} keys for {seconds:g} s: {tally.requests} requests "
        f"({tally.requests / seconds:.0f}/s), {tally.completed} jobs polled to COMPLETED",
        f"- responses: {statuses}",
        f"- errors (anything but 200 and the rate limit's 429): {errors}",
        f"- poll latency: p50 {cuts[49]:.1f} ms, p99 {cuts[98]:.1f} ms "
        f"(max {max(tally.poll_ms):.1f} ms, {len(tally.poll_ms)} polls)",
        f"- API process RSS: {samples[0][1]:.1f} MiB at start, "
        f"{min(half):.1f} to {max(half):.1f} MiB over the second half "
        f"(spread {spread:.1f}%, {'within' if spread <= 10 else 'OUTSIDE'} 10%)",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--keys", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, api_server(Path(tmp)) as (base_url, pid):
        store = open_store(Settings(data_dir=Path(tmp)).store_section)
        keys = [issue_key(store, credits=10**12, name=f"load-{i}").secret
                for i in range(args.keys)]
        store.close()
        load_before, cpu_before = os.getloadavg()[0], cpu_s(pid)
        tally, samples = asyncio.run(run_load(base_url, pid, keys, args.clients, args.seconds))
        api_cpu = cpu_s(pid) - cpu_before
    print(report(tally, samples, args.clients, args.keys, args.seconds))
    print(f"- API process CPU: {api_cpu:.1f} s over the run ({api_cpu / args.seconds:.0%} of "
          f"one core); {os.cpu_count()} cores, load average {load_before:.2f} before the run")
    if tally.errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
