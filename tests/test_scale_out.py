"""Two API servers and three workers sharing one Redis: nothing lost, nothing charged twice.

This test runs its own `redis-server` (the real binary, on a free port, with an
append-only file synced on every write) so that it can restart it mid-run; the
rest of the suite uses the machine's Redis at 127.0.0.1:6379.
"""

from __future__ import annotations

import math
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from reelserve.jobs import Job, JobState, JobStore

from conftest import (
    FIXTURE_ENGINE,
    T2V,
    ImageServer,
    Service,
    free_port,
    needs_outside_part,
    process_env,
)

JOBS = 100
RATE_LIMIT = 150
JOB = {"duration": "3", "aspect_ratio": "1:1", "generate_audio": False}
PRICE = 240  # millicredits: 3 s without audio
I2V = "kling-3-standard-image2video"


class RedisServer:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--appendonly", "yes", "--appendfsync", "always", "--save", "",
             "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    break
            except (redis.ConnectionError, redis.BusyLoadingError):
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()  # SIGTERM: Redis flushes the AOF and exits
            self.process.wait(10)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        needs_outside_part("redis-server is not installed (apt-get install -y redis-server)")
    server = RedisServer(tmp_path / "redis")
    server.directory.mkdir()
    server.start()
    yield server
    server.stop()


def _start_api(tmp_path: Path, name: str, settings: dict[str, object]) -> Service:
    service = Service(tmp_path / name, free_port(), settings)
    service.start(workers=0)
    return service


def _worker(tmp_path: Path, name: str, settings: dict[str, object],
            log: Path) -> subprocess.Popen[str]:
    with log.open("w") as out:
        return subprocess.Popen([sys.executable, "-m", "reelserve", "worker"],
                                env=process_env(tmp_path / name, **settings), text=True,
                                stdout=out, stderr=subprocess.STDOUT)


def _freeze_a_busy_worker(client: redis.Redis, prefix: str,
                          workers: list[subprocess.Popen[str]], request_ids: list[str],
                          timeout: float = 30) -> tuple[subprocess.Popen[str], str]:
    """SIGSTOP a worker that is running a job now; answer it and that job's id.

    The worker is frozen before its job is looked up, so the answer cannot go stale.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for worker in workers:
            worker.send_signal(signal.SIGSTOP)
            worker_id = f"{socket.gethostname()}:{worker.pid}"
            with client.pipeline(transaction=False) as pipe:
                for request_id in request_ids:
                    pipe.hmget(f"{prefix}:job:{request_id}", ["state", "worker_id"])
                rows = pipe.execute()
            for request_id, (state, owner) in zip(request_ids, rows, strict=True):
                if state == b"PROCESSING" and owner == worker_id.encode():
                    return worker, request_id
            worker.send_signal(signal.SIGCONT)
        time.sleep(0.05)
    raise TimeoutError("no worker was running a job")


@pytest.mark.slow
def test_two_servers_three_workers_lose_nothing(tmp_path: Path,
                                                own_redis: RedisServer) -> None:
    outputs = tmp_path / "shared-outputs"
    settings: dict[str, object] = {
        "store": own_redis.url, "redis_prefix": "scale", "output_dir": outputs,
        "engine": FIXTURE_ENGINE, "lease_s": 2, "rate_limit": RATE_LIMIT,
        "rate_window_s": 3600, "shutdown_grace_s": 5}
    apis = [_start_api(tmp_path, f"api{i}", settings) for i in range(2)]
    logs = [tmp_path / f"worker{i}.log" for i in range(3)]
    workers = [_worker(tmp_path, f"worker{i}", settings, logs[i]) for i in range(3)]
    client = redis.Redis(port=own_redis.port)
    try:
        key = apis[0].create_key("--credits", "1000")
        balance_before = 1_000_000
        request_ids: list[str] = []
        for index in range(JOBS):
            api = apis[index % 2]
            with api.client(key) as http:
                response = http.post(f"/v2/{T2V}",
                                     json={**JOB, "prompt": f"sleep=0.2 job {index}"})
            assert response.status_code == 200, response.text
            request_ids.append(response.json()["request_id"])

        # SIGKILL one worker mid-job; its lease runs out and another worker reruns the job.
        killed, killed_job = _freeze_a_busy_worker(client, "scale", workers, request_ids)
        killed.send_signal(signal.SIGKILL)
        # SIGSTOP another mid-job past its 2 s lease, then let it go on: its write is refused.
        others = [w for w in workers if w is not killed]
        stopped, stopped_job = _freeze_a_busy_worker(client, "scale", others, request_ids)
        time.sleep(5)
        stopped.send_signal(signal.SIGCONT)

        # Restart Redis mid-run; everything answered so far must still answer.
        own_redis.stop()
        own_redis.start()

        _assert_rate_limit_is_shared(apis, key)

        deadline = time.monotonic() + 240
        pending = set(request_ids)
        while pending and time.monotonic() < deadline:
            for request_id in list(pending):
                api = apis[hash(request_id) % 2]
                with api.client(key) as http:
                    body = http.get(f"/v2/requests/{request_id}/status").json()
                assert body.get("status") != "FAILED", body
                if body.get("status") == "COMPLETED":
                    pending.discard(request_id)
            time.sleep(0.5)
        assert not pending, f"{len(pending)} jobs never completed"

        store = apis[1].store()
        for request_id in request_ids:
            assert store.ledger(request_id) == [("hold", PRICE), ("capture", PRICE)]
        [record] = [k for k in store.list_keys() if k.prefix == key[:11]]
        charged = balance_before - record.balance
        assert charged == JOBS * PRICE
        with apis[0].client(key) as http:
            results = {request_id: http.get(f"/v2/requests/{request_id}").json()
                       for request_id in request_ids}
        assert httpx.get(results[request_ids[0]]["output"]).status_code == 200
        # The killed worker's job and the stopped worker's job each ran again.
        assert results[killed_job]["metrics"]["attempts"] >= 2
        assert results[stopped_job]["metrics"]["attempts"] >= 2
        refused = logs[workers.index(stopped)].read_text()
        assert "late result refused" in refused or "lost the lease" in refused
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGCONT)
                worker.terminate()
                worker.wait(30)
        for api in apis:
            api.stop()
        client.close()


def _assert_rate_limit_is_shared(apis: list[Service], key: str) -> None:
    """A burst spread over both servers is limited as one: RATE_LIMIT in all, not per server.

    The bodies are invalid on purpose (400 once counted), so the burst creates no
    jobs; a limit that each server kept alone would let 2 x RATE_LIMIT through.
    """
    now = time.time()
    window_end = math.ceil(now / 3600) * 3600
    if window_end - now < 20:  # do not straddle the fixed window's edge
        time.sleep(window_end - now + 0.5)
    burst_key = apis[0].create_key("--credits", "1000")
    codes: list[int] = []
    for index in range(2 * RATE_LIMIT + 50):
        with apis[index % 2].client(burst_key) as http:
            codes.append(http.post(f"/v2/{T2V}", json={"prompt": "x", "duration": "99"})
                         .status_code)
    assert codes.count(400) == RATE_LIMIT
    assert codes.count(429) == RATE_LIMIT + 50


@pytest.mark.slow
def test_fair_turns_caps_and_routing_hold_across_servers_and_workers(
        tmp_path: Path, own_redis: RedisServer, image_server: ImageServer) -> None:
    """Two keys of unequal load and a model-restricted worker, over two API servers.

    The big key queues 30 jobs, then the small key 3: the small key's jobs run within
    the first turns, not after the backlog. The big key's cap of 2 running jobs holds
    across both workers. Image-to-video jobs run on the worker pinned to that model, and
    text-to-video jobs never do.
    """
    settings: dict[str, object] = {
        "store": own_redis.url, "redis_prefix": "fair", "output_dir": tmp_path / "outputs",
        "engine": FIXTURE_ENGINE, "lease_s": 5, "rate_limit": 0,
        "fetch_allow_cidrs": "127.0.0.0/8"}
    apis = [_start_api(tmp_path, f"api{i}", settings) for i in range(2)]
    logs = [tmp_path / f"worker{i}.log" for i in range(3)]
    workers: list[subprocess.Popen[str]] = []
    try:
        big = apis[0].create_key("--credits", "1000", "--max-concurrent", "2")
        small = apis[1].create_key("--credits", "1000")
        big_ids = [_submit(apis[i % 2], big, {**JOB, "prompt": f"sleep=0.3 big {i}"})
                   for i in range(30)]
        small_ids = [_submit(apis[i % 2], small, {**JOB, "prompt": f"sleep=0.3 small {i}"})
                     for i in range(3)]
        image_ids = [_submit(apis[i % 2], big, {**JOB, "prompt": f"image {i}",
                                                "start_image_url": image_server.url("start.png")},
                             slug=I2V) for i in range(2)]
        # The workers start once the backlog is there, so it is what they see.
        workers += [_worker(tmp_path, f"worker{i}", settings, logs[i]) for i in range(2)]
        pinned = _worker(tmp_path, "worker2", {**settings, "worker_models": I2V}, logs[2])
        workers.append(pinned)
        store = apis[0].store()
        jobs = _wait_completed(store, big_ids + small_ids + image_ids)

        big_starts = sorted(jobs[i].started_at or 0.0 for i in big_ids)
        assert max(jobs[i].started_at or 0.0 for i in small_ids) < big_starts[10]
        big_runs = [(jobs[i].started_at or 0.0, jobs[i].completed_at or 0.0)
                    for i in big_ids + image_ids]
        assert max(sum(start <= at < end for start, end in big_runs)
                   for at, _ in big_runs) <= 2
        pinned_id = f"{socket.gethostname()}:{pinned.pid}"
        assert {jobs[i].metrics["worker"] for i in image_ids} == {pinned_id}
        assert pinned_id not in {jobs[i].metrics["worker"] for i in big_ids + small_ids}
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(30)
        for api in apis:
            api.stop()


def _submit(api: Service, key: str, body: dict[str, object], slug: str = T2V) -> str:
    with api.client(key) as http:
        response = http.post(f"/v2/{slug}", json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["request_id"])


def _wait_completed(store: JobStore, request_ids: list[str]) -> dict[str, Job]:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        jobs = {i: store.get_job(i) for i in request_ids}
        if all(job is not None and job.state.is_terminal for job in jobs.values()):
            assert all(job.state is JobState.COMPLETED for job in jobs.values()), jobs  # type: ignore[union-attr]
            return jobs  # type: ignore[return-value]
        time.sleep(0.2)
    raise TimeoutError("jobs did not finish")
