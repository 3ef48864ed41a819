"""API throughput and dispatch latency, measured side by side in one run.

    .venv/bin/python bench/api.py [--requests 2000] [--rounds 3] [--dispatch 40]

1. Submit and status-poll throughput of a real `reelserve serve` (one uvicorn
   process, no workers, so the queue only grows) against `bench/bare_app.py`, a
   FastAPI app with one JSON route on the same uvicorn stack. Rounds alternate
   between the two servers; the medians and their ratio are printed.
2. Submit-to-PROCESSING dispatch latency with one idle worker: jobs are sent one
   at a time, each after the previous finished, and the latency is the job's
   ``started_at - created_at`` as the store recorded them (one clock). The
   worker runs the tests' fixture engine (``sleep=0``), so each job is short.

The load generator is a raw HTTP/1.1 client on asyncio streams in this process; it shares the
machine's cores with the server under test, the same way for both servers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from reelserve.jobs.sqlite import SqliteJobStore

ROOT = Path(__file__).resolve().parent.parent
T2V = "kling-3-standard-text2video"
JOB = {"prompt": "sleep=0 a lighthouse in fog", "duration": "3", "generate_audio": False}
CONCURRENCY = 32


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(base_url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
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
def reelserve(data_dir: Path, workers: int) -> Iterator[tuple[str, str]]:
    """A real `reelserve serve`; yields (base URL, API key)."""
    port = free_port()
    env = {**os.environ, "REELSERVE_DATA_DIR": str(data_dir), "REELSERVE_PORT": str(port),
           "REELSERVE_RATE_LIMIT": "0", "REELSERVE_STARTING_CREDITS": "1000000000",
           "REELSERVE_ENGINE": "fixture_engines:create_engine",
           "PYTHONPATH": str(ROOT / "tests")}
    process = subprocess.Popen(
        [sys.executable, "-m", "reelserve", "serve", "--workers", str(workers)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
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


async def one_lane(host: str, port: int, request: bytes, count: int) -> None:
    """Send ``count`` requests one after another over one keep-alive connection."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for _ in range(count):
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = head.split(b" ", 2)[1]
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            body = await reader.readexactly(length)
            if status != b"200":
                raise RuntimeError(f"{status.decode()}: {body[:200]!r}")
    finally:
        writer.close()
        await writer.wait_closed()


async def hammer(base_url: str, key: str, method: str, path: str, requests: int) -> float:
    """Send ``requests`` requests, CONCURRENCY at a time; answer requests per second.

    A raw HTTP/1.1 client on asyncio streams: far cheaper per request than a
    full client library, so more of the shared CPU goes to the server measured.
    """
    url = httpx.URL(base_url)
    host, port = url.host, url.port or 80
    body = json.dumps(JOB).encode() if method == "POST" else b""
    request = (f"{method} {path} HTTP/1.1\r\nhost: {host}:{port}\r\nx-api-key: {key}\r\n"
               f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
               ).encode() + body
    started = time.perf_counter()
    await asyncio.gather(*(one_lane(host, port, request, requests // CONCURRENCY)
                           for _ in range(CONCURRENCY)))
    return requests // CONCURRENCY * CONCURRENCY / (time.perf_counter() - started)


def throughput(requests: int, rounds: int, data_dir: Path) -> None:
    results: dict[str, list[float]] = {"bare submit": [], "reelserve submit": [],
                                       "bare poll": [], "reelserve poll": []}
    for _ in range(rounds):
        with bare_app() as base_url:
            results["bare submit"].append(
                asyncio.run(hammer(base_url, "", "POST", f"/v2/{T2V}", requests)))
            results["bare poll"].append(asyncio.run(
                hammer(base_url, "", "GET", "/v2/requests/some-id/status", requests)))
        with reelserve(data_dir, workers=0) as (base_url, key):
            results["reelserve submit"].append(
                asyncio.run(hammer(base_url, key, "POST", f"/v2/{T2V}", requests)))
            request_id = httpx.post(f"{base_url}/v2/{T2V}", json=JOB,
                                    headers={"x-api-key": key}).json()["request_id"]
            results["reelserve poll"].append(asyncio.run(
                hammer(base_url, key, "GET", f"/v2/requests/{request_id}/status", requests)))
    median = {name: statistics.median(values) for name, values in results.items()}
    print(f"throughput, {requests} requests x {rounds} rounds, {CONCURRENCY} in flight "
          "(median requests/s):")
    for name, values in results.items():
        shown = ", ".join(f"{v:.0f}" for v in values)
        print(f"  {name:18} {median[name]:8.0f}   rounds: {shown}")
    print(f"  submit ratio reelserve/bare: {median['reelserve submit'] / median['bare submit']:.2f}"
          "  (target >= 0.50)")
    print(f"  poll ratio reelserve/bare:   {median['reelserve poll'] / median['bare poll']:.2f}")


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
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dispatch", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="reelserve-bench-") as tmp:
        throughput(args.requests, args.rounds, Path(tmp) / "throughput")
        dispatch(args.dispatch, Path(tmp) / "dispatch")


if __name__ == "__main__":
    main()
