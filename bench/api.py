"""API throughput and latency, measured with wrk against bare routes, side by side in one run.

    apt-get update && apt-get install -y wrk      # Debian's wrk 4, a compiled load generator
    .venv/bin/python bench/api.py [--seconds 10] [--rounds 3] [--rate 200] [--dispatch 40]

1. Throughput: submit (``POST /v2/{slug}``) and status-poll requests per second of a real
   ``reelserve serve --workers 0`` (one uvicorn process, SQLite store, a fresh one each
   round, so every round starts from an empty queue) against ``bench/bare_app.py``, bare
   async FastAPI routes on the same uvicorn stack that parse the same JSON body.
   ``wrk -t1 -c32`` for ``--seconds`` per measurement; rounds alternate which server goes
   first; medians, the ratio of the medians and each round's ratio are printed.
   ``--store redis://...`` measures reelserve on Redis instead.
2. Latency at a fixed request rate while a worker renders: ``reelserve serve --workers 1``
   with the real preview engine, kept busy by 15 s 1080p jobs with audio, takes submits
   and polls at ``--rate`` requests/s each; p50/p99/max latency as wrk measured them.
3. ``--only profile``: the same server run under pyinstrument (main thread, where the
   event loop runs) while wrk sends submits for ``--seconds``; the text profile is
   written to ``--profile-out`` (``bench-submit-profile.txt``) and its top printed.
4. Dispatch: jobs submitted one at a time to a server with one idle worker (the tests'
   fixture engine, ``sleep=0``); latency = ``started_at - created_at`` as the store
   recorded them (one clock).

Pacing: Debian has no wrk2, so plain wrk is paced by its Lua ``delay()`` hook: before
each request a connection waits an exponentially distributed gap with mean
``connections / rate``, which makes the offered load a Poisson stream at ``rate`` as
long as responses are much faster than that gap. wrk does not correct for coordinated
omission: while the server stalls, the requests it would have sent are not sent. The
achieved rate is printed beside the target, so a shortfall is visible.

wrk runs as its own process (one thread) and the servers are started as processes
through the public CLI and ``uvicorn --factory``; nothing here imports the API package.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis

from reelserve.jobs.redis_layout import remove_prefix
from reelserve.jobs.sqlite import SqliteJobStore

ROOT = Path(__file__).resolve().parent.parent
T2V = "kling-3-standard-text2video"
JOB = {"prompt": "sleep=0 a lighthouse in fog", "duration": "3", "generate_audio": False}
RENDER_JOB = {"prompt": "a lighthouse at night in the rain, slow pan", "duration": "15",
              "aspect_ratio": "16:9", "generate_audio": True}
CONNECTIONS = 32
PACED_CONNECTIONS = 16
# Each wrk run reports one machine-readable line from its done() hook.
REPORT = """
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d %d\\n", summary.requests,
    summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


@dataclass(frozen=True)
class WrkResult:
    """What one wrk run measured; latencies in milliseconds."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def lua_script(method: str, key: str, body: dict[str, object] | None,
               mean_gap_ms: float | None) -> str:
    """A wrk script sending one fixed request, optionally paced by Poisson gaps."""
    lines = [f'wrk.method = "{method}"', 'wrk.headers["content-type"] = "application/json"']
    if key:
        lines.append(f'wrk.headers["x-api-key"] = {json.dumps(key)}')
    if body is not None:
        lines.append(f"wrk.body = {json.dumps(json.dumps(body))}")
    if mean_gap_ms is not None:
        lines += ["function delay()",
                  f"  return math.floor(-{mean_gap_ms} * math.log(1 - math.random()))",
                  "end"]
    return "\n".join(lines) + "\n" + REPORT


def run_wrk(url: str, script: str, seconds: int, connections: int) -> WrkResult:
    """One wrk run; raises if any request failed or answered other than 2xx."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as file:
        file.write(script)
    try:
        done = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
             "-s", file.name, url], capture_output=True, text=True, check=True)
    finally:
        os.unlink(file.name)
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT"))
    requests, duration_us, errors, non_2xx, p50, p99, peak = map(int, line.split()[1:])
    if errors or non_2xx:
        raise RuntimeError(f"{url}: {errors} socket errors, {non_2xx} non-2xx answers\n"
                           f"{done.stdout}")
    return WrkResult(requests, duration_us / 1e6, p50 / 1000, p99 / 1000, peak / 1000)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(base_url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("server did not come up")


def stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def reelserve(data_dir: Path, workers: int, *, engine: str = "fixture",
              store_url: str = "", profile_to: Path | None = None,
              ) -> Iterator[tuple[str, str]]:
    """A real ``reelserve serve``; yields (base URL, API key).

    With ``profile_to``, the server runs under pyinstrument and writes its text
    profile there when it stops.
    """
    port = free_port()
    env = {**os.environ, "REELSERVE_DATA_DIR": str(data_dir), "REELSERVE_PORT": str(port),
           "REELSERVE_RATE_LIMIT": "0", "REELSERVE_STARTING_CREDITS": "1000000000"}
    if engine == "fixture":
        env |= {"REELSERVE_ENGINE": "fixture_engines:create_engine",
                "PYTHONPATH": str(ROOT / "tests")}
    command = [sys.executable, "-m", "reelserve", "serve", "--workers", str(workers)]
    if profile_to is not None:
        command[1:1] = ["-m", "pyinstrument", "-r", "text", "--show-all", "-o", str(profile_to)]
    prefix = f"bench-{uuid.uuid4().hex[:12]}"
    if store_url:  # a fresh key prefix, removed afterwards: the Redis may be shared
        command += ["--store", store_url]
        env["REELSERVE_REDIS_PREFIX"] = prefix
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    key = ""
    for line in process.stdout:
        if line.startswith("rs_"):
            key = line.strip()
        if line.startswith("Serving on"):
            break
    process.stdout.close()
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base_url, process)
        if not key:  # a data dir reused from an earlier round already has its key
            key = (data_dir / "bench-key").read_text()
        (data_dir / "bench-key").write_text(key)
        yield base_url, key
    finally:
        stop(process)
        if store_url:
            client = redis.Redis.from_url(store_url)
            remove_prefix(client, prefix)
            client.close()


@contextmanager
def bare_app() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "bench.bare_app:create_app",
         "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base_url, process)
        yield base_url
    finally:
        stop(process)


def submit_and_poll(base_url: str, key: str, seconds: int, request_id: str,
                    mean_gap_ms: float | None = None,
                    connections: int = CONNECTIONS) -> tuple[WrkResult, WrkResult]:
    submit = run_wrk(f"{base_url}/v2/{T2V}", lua_script("POST", key, JOB, mean_gap_ms),
                     seconds, connections)
    poll = run_wrk(f"{base_url}/v2/requests/{request_id}/status",
                   lua_script("GET", key, None, mean_gap_ms), seconds, connections)
    return submit, poll


def throughput(seconds: int, rounds: int, data_dir: Path, store_url: str) -> None:
    rates: dict[str, list[float]] = {"bare submit": [], "reelserve submit": [],
                                     "bare poll": [], "reelserve poll": []}

    def measure_bare() -> None:
        with bare_app() as base_url:
            submit, poll = submit_and_poll(base_url, "", seconds, "some-id")
        rates["bare submit"].append(submit.rate)
        rates["bare poll"].append(poll.rate)

    def measure_reelserve(round_dir: Path) -> None:
        with reelserve(round_dir, workers=0, store_url=store_url) as (base_url, key):
            request_id = httpx.post(f"{base_url}/v2/{T2V}", json=JOB,
                                    headers={"x-api-key": key}).json()["request_id"]
            submit, poll = submit_and_poll(base_url, key, seconds, request_id)
        rates["reelserve submit"].append(submit.rate)
        rates["reelserve poll"].append(poll.rate)

    for number in range(rounds):
        # A fresh store each round: every round starts from the same empty queue, instead
        # of a queue grown by the rounds before it. Who goes first alternates.
        round_dir = data_dir / f"round-{number}"
        if number % 2 == 0:
            measure_bare()
            measure_reelserve(round_dir)
        else:
            measure_reelserve(round_dir)
            measure_bare()
    median = {name: statistics.median(values) for name, values in rates.items()}
    store = "Redis" if store_url else "SQLite"
    print(f"throughput, wrk -t1 -c{CONNECTIONS} -d{seconds}s x {rounds} rounds, "
          f"reelserve on {store} (median requests/s):")
    for name, values in rates.items():
        shown = ", ".join(f"{v:.0f}" for v in values)
        print(f"  {name:18} {median[name]:8.0f}   rounds: {shown}")
    for kind, target in (("submit", "  (target >= 0.50)"), ("poll", "")):
        ratios = [ours / bare for ours, bare in zip(rates[f"reelserve {kind}"],
                                                    rates[f"bare {kind}"], strict=True)]
        print(f"  {kind} ratio reelserve/bare: "
              f"{median[f'reelserve {kind}'] / median[f'bare {kind}']:.2f}{target}; "
              f"round by round {', '.join(f'{r:.2f}' for r in ratios)} "
              f"(median {statistics.median(ratios):.2f})")


def paced_latency(seconds: int, rate: float, data_dir: Path) -> None:
    """Submit and poll latency at ``rate`` requests/s each, with a worker rendering."""
    with reelserve(data_dir, workers=1, engine="preview") as (base_url, key), \
            httpx.Client(base_url=base_url, headers={"x-api-key": key}) as client:
        ids = [client.post(f"/v2/{T2V}", json=RENDER_JOB).json()["request_id"]
               for _ in range(3)]
        deadline = time.monotonic() + 60
        while client.get(f"/v2/requests/{ids[0]}/status").json()["status"] != "PROCESSING":
            if time.monotonic() > deadline:
                raise RuntimeError("the worker did not start rendering")
            time.sleep(0.1)
        gap_ms = PACED_CONNECTIONS / rate * 1000
        submit, poll = submit_and_poll(base_url, key, seconds, ids[0], gap_ms,
                                       PACED_CONNECTIONS)
        still = client.get(f"/v2/requests/{ids[0]}/status").json()["status"]
    print(f"latency at a fixed rate, {rate:.0f} requests/s offered, wrk -t1 "
          f"-c{PACED_CONNECTIONS} -d{seconds}s, one worker rendering 15 s 1080p preview jobs "
          f"(first job {still} at the end):")
    for name, result in (("submit", submit), ("poll", poll)):
        print(f"  {name:6}  achieved {result.rate:6.0f}/s   p50 {result.p50_ms:6.1f} ms   "
              f"p99 {result.p99_ms:6.1f} ms   max {result.max_ms:6.1f} ms")


def profile_submits(seconds: int, data_dir: Path, out: Path) -> None:
    """Where a submit's time goes on the event loop, sampled by pyinstrument."""
    with reelserve(data_dir, workers=0, profile_to=out) as (base_url, key):
        result = run_wrk(f"{base_url}/v2/{T2V}", lua_script("POST", key, JOB, None), seconds,
                         CONNECTIONS)
    print(f"profile of {result.requests} submits ({result.rate:.0f}/s under the profiler) "
          f"written to {out}; its first lines:")
    print("\n".join(out.read_text().splitlines()[:60]))


def dispatch(jobs: int, data_dir: Path) -> None:
    latencies = []
    with reelserve(data_dir, workers=1) as (base_url, key), \
            httpx.Client(base_url=base_url, headers={"x-api-key": key}) as client:
        time.sleep(1.0)  # let the worker's engine child finish loading
        store = SqliteJobStore(data_dir / "reelserve.sqlite3", retention_s=3600)
        for _ in range(jobs):
            request_id = client.post(f"/v2/{T2V}", json=JOB).json()["request_id"]
            while (status := client.get(f"/v2/requests/{request_id}/status").json()["status"]) \
                    not in ("COMPLETED", "FAILED"):
                time.sleep(0.01)
            job = store.get_job(request_id)
            assert job is not None and job.started_at is not None, status
            latencies.append((job.started_at - job.created_at) * 1000)
        store.close()
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
    print(f"dispatch, submit to PROCESSING with an idle worker, {jobs} jobs:")
    print(f"  p50 {statistics.median(latencies):.1f} ms   p99 {p99:.1f} ms   "
          f"max {latencies[-1]:.1f} ms   (target p50 <= 50 ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=200.0, help="paced requests/s")
    parser.add_argument("--dispatch", type=int, default=40)
    parser.add_argument("--store", default="", help="a redis:// URL; SQLite when empty")
    parser.add_argument("--only", choices=("throughput", "latency", "dispatch", "profile"),
                        default=None)
    parser.add_argument("--profile-out", type=Path, default=Path("bench-submit-profile.txt"))
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench/api.py needs wrk: apt-get update && apt-get install -y wrk")
    print("load average before: {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
    with tempfile.TemporaryDirectory(prefix="reelserve-bench-") as tmp:
        if args.only in (None, "throughput"):
            throughput(args.seconds, args.rounds, Path(tmp) / "throughput", args.store)
        if args.only in (None, "latency"):
            paced_latency(args.seconds, args.rate, Path(tmp) / "latency")
        if args.only in (None, "dispatch"):
            dispatch(args.dispatch, Path(tmp) / "dispatch")
        if args.only == "profile":
            profile_submits(args.seconds, Path(tmp) / "profile", args.profile_out.resolve())
    print("load average after: {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
