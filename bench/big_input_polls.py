"""/healthz latency while 8 clients poll a job that carries a 50 MB inline image.

    .venv/bin/python bench/big_input_polls.py [--samples 400] [--pollers 8]

A real `reelserve serve` with no workers (the job stays QUEUED, so every poll is
a full status read). /healthz p50/p99 is measured idle, then again while
``--pollers`` threads poll the job's status, each every ``--poll-interval``
seconds (0: flat out); the ratio is printed. Before input blobs, each poll
loaded and parsed the ~67 MB params of such a job on the event loop. The image
is 50 MB of random bytes sent as a base64 data: URL (never decoded: no worker
runs it).
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bench.api import reelserve

I2V = "kling-3-standard-image2video"


def healthz_latencies(base_url: str, samples: int) -> list[float]:
    times = []
    with httpx.Client(base_url=base_url, timeout=60) as client:
        for _ in range(samples):
            started = time.perf_counter()
            client.get("/healthz").raise_for_status()
            times.append(time.perf_counter() - started)
    return times


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--pollers", type=int, default=8)
    parser.add_argument("--image-mb", type=int, default=50)
    # Each poller's pause between polls (SDKs poll every second or so); 0 for flat out.
    parser.add_argument("--poll-interval", type=float, default=0.1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, reelserve(Path(tmp), workers=0) as (url, key):
        idle = healthz_latencies(url, args.samples)
        image = os.urandom(args.image_mb * 1_000_000)
        body = {"prompt": "a harbour", "duration": "3",
                "start_image_url": "data:image/png;base64," + base64.b64encode(image).decode()}
        with httpx.Client(base_url=url, headers={"x-api-key": key}, timeout=300) as client:
            started = time.perf_counter()
            response = client.post(f"/v2/{I2V}", json=body)
            submit_s = time.perf_counter() - started
            response.raise_for_status()
            request_id = response.json()["request_id"]
        stop, polls = threading.Event(), [0] * args.pollers

        def poll(index: int) -> None:
            with httpx.Client(base_url=url, headers={"x-api-key": key}, timeout=60) as client:
                while not stop.is_set():
                    client.get(f"/v2/requests/{request_id}/status").raise_for_status()
                    polls[index] += 1
                    stop.wait(args.poll_interval)

        threads = [threading.Thread(target=poll, args=(i,)) for i in range(args.pollers)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        try:
            busy = healthz_latencies(url, args.samples)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
    print(f"submit of a {args.image_mb} MB inline image: {submit_s:.2f} s")
    print(f"/healthz idle:            p50 {statistics.median(idle) * 1000:.2f} ms, "
          f"p99 {p99(idle) * 1000:.2f} ms")
    print(f"/healthz, {args.pollers} pollers:     p50 {statistics.median(busy) * 1000:.2f} ms, "
          f"p99 {p99(busy) * 1000:.2f} ms ({sum(polls)} polls, "
          f"every {args.poll_interval:g} s each)")
    print(f"p99 ratio busy/idle: {p99(busy) / p99(idle):.2f}")


if __name__ == "__main__":
    main()
