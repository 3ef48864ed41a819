"""Workers lose nothing: killed workers, crashed engine children, stale writes, restarts."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from conftest import T2V, Service, make_service

FAST = {"duration": "3", "generate_audio": False}
PRICE = 0.24  # 3 s without audio


def _submit(service: Service, prompt: str) -> str:
    with service.client() as client:
        response = client.post(f"/v2/{T2V}", json={**FAST, "prompt": prompt})
    assert response.status_code == 200, response.text
    return str(response.json()["request_id"])


def _result(service: Service, request_id: str) -> dict[str, object]:
    with service.client() as client:
        body: dict[str, object] = client.get(f"/v2/requests/{request_id}").json()
        return body


def _balance(service: Service) -> float:
    (key,) = service.store().list_keys()
    return key.balance / 1000


@pytest.fixture
def bare_service(tmp_path: Path, backend: dict[str, str]) -> Service:
    """The API alone; each test starts the workers it kills."""
    return make_service(tmp_path, workers=0, lease_s=1.5, **backend)


def test_sigkilled_worker_job_completes_once_and_is_charged_once(bare_service: Service) -> None:
    service = bare_service
    try:
        first = service.start_worker()
        request_id = _submit(service, "sleep=4")
        service.wait_for(request_id, ("PROCESSING",))
        time.sleep(0.5)
        first.send_signal(signal.SIGKILL)
        first.wait()
        service.start_worker()
        assert service.wait_for(request_id, timeout=60)["status"] == "COMPLETED"
        result = _result(service, request_id)
        assert result["metrics"]["attempts"] == 2  # type: ignore[index]
        assert service.store().ledger(request_id) == [("hold", 240), ("capture", 240)]
        assert _balance(service) == pytest.approx(100 - PRICE)
        outputs = list((service.data_dir / "outputs").iterdir())
        assert [p.name for p in outputs] == [str(result["output"]).rsplit("/", 1)[1]]
    finally:
        service.stop()


def test_stopped_worker_past_its_lease_has_its_late_write_refused(bare_service: Service) -> None:
    service = bare_service
    try:
        stalled = service.start_worker()
        request_id = _submit(service, "sleep=3")
        service.wait_for(request_id, ("PROCESSING",))
        stalled.send_signal(signal.SIGSTOP)
        service.start_worker()
        assert service.wait_for(request_id, timeout=60)["status"] == "COMPLETED"
        winner = _result(service, request_id)
        stalled.send_signal(signal.SIGCONT)
        time.sleep(3)  # the stalled worker's child has finished and reported by now
        assert _result(service, request_id) == winner
        assert winner["metrics"]["attempts"] == 2  # type: ignore[index]
        assert service.store().ledger(request_id) == [("hold", 240), ("capture", 240)]
        outputs = [p.name for p in (service.data_dir / "outputs").iterdir()]
        assert outputs == [str(winner["output"]).rsplit("/", 1)[1]]
    finally:
        service.stop()


def test_crashed_engine_child_reruns_the_job(service: Service, tmp_path: Path) -> None:
    counter = tmp_path / "attempts"
    request_id = _submit(service, f"crash-until=2:{counter}")
    assert service.wait_for(request_id)["status"] == "COMPLETED"
    assert counter.read_text() == "2"
    assert _result(service, request_id)["metrics"]["attempts"] == 2  # type: ignore[index]
    assert [k for k, _ in service.store().ledger(request_id)] == ["hold", "capture"]


def test_three_crashes_fail_the_job_with_a_message_and_release_the_hold(
    service: Service, tmp_path: Path
) -> None:
    counter = tmp_path / "attempts"
    request_id = _submit(service, f"crash-until=99:{counter}")
    body = service.wait_for(request_id)
    assert body["status"] == "FAILED"
    assert "failed after 3 attempts" in body["error"]
    assert "engine process died" in body["error"]
    assert counter.read_text() == "3"
    assert [k for k, _ in service.store().ledger(request_id)] == ["hold", "release"]
    assert _balance(service) == pytest.approx(100)
    # the worker and its new child still serve the next job
    assert service.wait_for(_submit(service, "after the storm"))["status"] == "COMPLETED"


def test_restart_keeps_every_request_answerable(tmp_path: Path, backend: dict[str, str]) -> None:
    service = make_service(tmp_path, lease_s=2, **backend)
    try:
        done = _submit(service, "a finished job")
        service.wait_for(done)
        finished = _result(service, done)
        running = _submit(service, "sleep=4")
        service.wait_for(running, ("PROCESSING",))
        queued = _submit(service, "a queued job")
        service.stop()
        assert service.process is not None and service.process.returncode is not None

        service.start(workers=1)
        assert _result(service, done) == finished
        for request_id in (running, queued):
            assert service.wait_for(request_id, timeout=60)["status"] == "COMPLETED"
        if not backend:  # SQLite: the jobs lived in the file in the data dir
            assert os.path.exists(service.data_dir / "reelserve.sqlite3")
        for request_id in (done, running, queued):
            assert [k for k, _ in service.store().ledger(request_id)] == ["hold", "capture"]
    finally:
        service.stop()
