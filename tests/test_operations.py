"""Operations against the real server: /metrics, job logs, /readyz, graceful shutdown, status."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from conftest import T2V, Service, make_service

FAST = {"duration": "3", "generate_audio": False}


def _samples(service: Service) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{service.base_url}/metrics", timeout=10).text
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def _value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
           **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _submit(service: Service, prompt: str) -> str:
    with service.client() as client:
        response = client.post(f"/v2/{T2V}", json={**FAST, "prompt": prompt})
    assert response.status_code == 200, response.text
    return str(response.json()["request_id"])


def test_metrics_count_submitted_completed_and_failed_jobs(service: Service) -> None:
    before = _samples(service)
    done = _submit(service, "sleep=0.2")
    failed = _submit(service, "fail")
    service.wait_for(done)
    service.wait_for(failed)
    after = _samples(service)

    def moved(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert moved("reelserve_jobs_submitted_total", model=T2V) == 2
    assert moved("reelserve_jobs_completed_total", model=T2V, engine="fixture") == 1
    assert moved("reelserve_jobs_failed_total", model=T2V, reason="engine") == 1
    assert moved("reelserve_credits_captured_total", model=T2V) == 0.24
    assert moved("reelserve_run_seconds_count", engine="fixture") == 2 - 1  # the failed one
    assert moved("reelserve_http_requests_total", method="POST", route="/v2/{slug}",
                 status="200") == 2
    assert _value(after, "reelserve_engine_load_seconds_count", engine="fixture") >= 1
    assert _value(after, "reelserve_queue_depth") == 0
    assert _value(after, "reelserve_jobs", state="COMPLETED") >= 1
    assert not any(done in str(labels) for _, labels in after)  # ids are never labels


def test_job_log_lines_carry_the_request_id_and_never_the_key(service: Service) -> None:
    request_id = _submit(service, "sleep=0.1")
    service.wait_for(request_id)
    deadline = time.monotonic() + 10
    lines: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        lines = [json.loads(line) for line in service.output
                 if line.startswith("{") and request_id in line]
        if any(str(line["message"]).startswith("completed") for line in lines):
            break
        time.sleep(0.1)
    messages = {str(line["message"]).split(" ")[0] for line in lines}
    assert {"submitted", "running", "completed"} <= messages
    for line in lines:
        assert line["request_id"] == request_id
        assert line["model"] == T2V
        assert "attempt" in line and "engine" in line
    assert not any(service.api_key in line for line in service.output)


def test_readyz_turns_503_when_the_only_worker_stops(
        tmp_path: Path, backend: dict[str, str],
) -> None:
    service = make_service(tmp_path, workers=0, worker_stale_s=3, **backend)
    try:
        ready = httpx.get(f"{service.base_url}/readyz")
        assert ready.status_code == 503 and "heartbeat" in ready.json()["error"]
        worker = service.start_worker()
        assert _wait_ready(service, 200)
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
        assert _wait_ready(service, 503)
        assert httpx.get(f"{service.base_url}/healthz").status_code == 200
    finally:
        service.stop()


def test_readyz_without_workers_on_purpose(tmp_path: Path, backend: dict[str, str]) -> None:
    service = make_service(tmp_path, workers=0, ready_without_workers="true", **backend)
    try:
        assert httpx.get(f"{service.base_url}/readyz").status_code == 200
    finally:
        service.stop()


def _wait_ready(service: Service, status: int, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(f"{service.base_url}/readyz").status_code == status:
            return True
        time.sleep(0.1)
    return False


def test_sigterm_lets_the_running_job_finish(tmp_path: Path, backend: dict[str, str]) -> None:
    service = make_service(tmp_path, workers=0, shutdown_grace_s=30, **backend)
    try:
        worker = service.start_worker()
        request_id = _submit(service, "sleep=2")
        service.wait_for(request_id, ("PROCESSING",))
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
        with service.client() as client:
            result = client.get(f"/v2/requests/{request_id}").json()
        assert result["status"] == "COMPLETED"
        assert result["metrics"]["attempts"] == 1
        assert service.store().ledger(request_id) == [("hold", 240), ("capture", 240)]
    finally:
        service.stop()


def test_sigterm_past_the_grace_period_hands_the_job_back(
        tmp_path: Path, backend: dict[str, str],
) -> None:
    # One attempt allowed: a hand-back must not count as a lost attempt.
    service = make_service(tmp_path, workers=0, shutdown_grace_s=0.5, max_attempts=1, **backend,
                           lease_s=60)
    try:
        worker = service.start_worker()
        request_id = _submit(service, "sleep=4")
        service.wait_for(request_id, ("PROCESSING",))
        handed_back_at = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
        status = service.wait_for(request_id, ("QUEUED",), timeout=5)
        assert time.monotonic() - handed_back_at < 30  # not left to its 60 s lease
        assert status["status"] == "QUEUED"
        service.start_worker()
        assert service.wait_for(request_id, timeout=30)["status"] == "COMPLETED"
        with service.client() as client:
            result = client.get(f"/v2/requests/{request_id}").json()
        assert result["metrics"]["attempts"] == 2
        assert service.store().ledger(request_id) == [("hold", 240), ("capture", 240)]
    finally:
        service.stop()


def test_status_command_shows_queue_states_and_workers(service: Service) -> None:
    request_id = _submit(service, "sleep=0.1")
    service.wait_for(request_id)
    out = service.cli("status")
    assert "queue: 0 job(s) waiting" in out
    assert "COMPLETED" in out and "alive" in out


def test_serve_sigterm_stops_its_workers(tmp_path: Path, backend: dict[str, str]) -> None:
    service = make_service(tmp_path, workers=2, **backend)
    assert service.process is not None
    pids = subprocess.run(["pgrep", "-P", str(service.process.pid)], capture_output=True,
                          text=True).stdout.split()
    assert len(pids) == 2
    service.stop()
    assert service.process.returncode == 0
    alive = subprocess.run(["ps", "-o", "pid=", "-p", ",".join(pids)], capture_output=True,
                           text=True).stdout.split()
    assert alive == []
