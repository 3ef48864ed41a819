"""Caps, routing and wake-ups through the real service: `reelserve serve`, workers, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from conftest import T2V, ImageServer, Service, make_service, process_env

I2V = "kling-3-standard-image2video"
FAST = {"duration": "3", "generate_audio": False}


def _worker(service: Service, *args: str) -> subprocess.Popen[str]:
    worker = subprocess.Popen([sys.executable, "-m", "reelserve", "worker", *args],
                              env=process_env(service.data_dir, **service.settings), text=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    service.workers.append(worker)
    return worker


def test_max_queued_answers_429_naming_the_cap_with_retry_after(
        tmp_path: Path, backend: dict[str, str]) -> None:
    service = make_service(tmp_path, workers=0, **backend)
    try:
        key = service.create_key("--max-queued", "2", "--max-concurrent", "1")
        listed = service.cli("keys", "list")
        assert key[:11] in listed and "scheduling" in listed
        with service.client(key) as client:
            codes = [client.post(f"/v2/{T2V}", json={**FAST, "prompt": f"job {i}"})
                     for i in range(3)]
        assert [r.status_code for r in codes] == [200, 200, 429]
        refused = codes[2]
        assert "at most 2 jobs waiting" in refused.json()["error"]
        assert int(refused.headers["retry-after"]) >= 1
        changed = service.cli("keys", "set", key[:11], "--max-queued", "0", "--weight", "2")
        assert "weight 2" in changed and "max queued no cap" in changed
        with service.client(key) as client:
            assert client.post(f"/v2/{T2V}", json={**FAST, "prompt": "now"}).status_code == 200
    finally:
        service.stop()


def test_a_model_no_worker_serves_stays_queued_and_says_why(
        tmp_path: Path, backend: dict[str, str], image_server: ImageServer) -> None:
    service = make_service(tmp_path, workers=0, **backend)
    try:
        _worker(service, "--models", I2V)
        with service.client() as client:
            text = client.post(f"/v2/{T2V}", json={**FAST, "prompt": "text"}).json()
            image = client.post(f"/v2/{I2V}", json={
                **FAST, "prompt": "image", "start_image_url": image_server.url("start.png")}
            ).json()
        assert service.wait_for(image["request_id"])["status"] == "COMPLETED"
        with service.client() as client:
            status = client.get(f"/v2/requests/{text['request_id']}/status").json()
            scraped = client.get("/metrics").text
        assert status["status"] == "QUEUED"
        assert status["waiting_for"] == f"a worker for {T2V}"
        assert f'reelserve_jobs_waiting_for_worker{{model="{T2V}"}} 1.0' in scraped
        assert f"waiting: 1 queued job(s) for a worker for {T2V}" in service.cli("status")

        _worker(service, "--models", T2V)
        done = service.wait_for(text["request_id"])
        assert done["status"] == "COMPLETED" and "waiting_for" not in done
    finally:
        service.stop()


def test_an_idle_worker_takes_a_new_job_without_polling(tmp_path: Path,
                                                        backend: dict[str, str]) -> None:
    # Idle workers look at the queue once a minute here: only the wake-up can be fast.
    service = make_service(tmp_path, workers=0, idle_wait_s=60, **backend)
    worker = _worker(service)
    try:
        deadline = time.monotonic() + 60
        while not service.store().list_workers() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # past its first look at the empty queue: blocked on the signal now
        with service.client() as client:
            first = client.post(f"/v2/{T2V}", json={**FAST, "prompt": "wake"}).json()
        assert service.wait_for(first["request_id"], timeout=30)["status"] == "COMPLETED"
    finally:
        worker.kill()  # idle and blocked for up to a minute: nothing to hand back
        worker.wait()
        service.stop()


def test_the_event_stream_says_why_a_job_waits_until_a_worker_comes(
        tmp_path: Path, backend: dict[str, str]) -> None:
    service = make_service(tmp_path, workers=0, **backend)
    try:
        with service.client() as client:
            request_id = client.post(f"/v2/{T2V}", json={**FAST, "prompt": "wait"}
                                     ).json()["request_id"]
            events = []
            with client.stream("GET", f"/v2/requests/{request_id}/events",
                               timeout=60) as response:
                for line in response.iter_lines():
                    if not line.startswith("data: "):
                        continue
                    events.append(json.loads(line[6:]))
                    if len(events) == 1:  # the job waits, and says why: now a worker comes
                        _worker(service, "--models", T2V)
                    if events[-1]["status"] in ("COMPLETED", "FAILED"):
                        break
        assert events[0]["status"] == "QUEUED"
        assert events[0]["waiting_for"] == f"a worker for {T2V}"
        assert events[-1]["status"] == "COMPLETED" and "waiting_for" not in events[-1]
    finally:
        service.stop()
