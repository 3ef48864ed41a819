"""Storage faults are infrastructure faults: folders come back, failed writes are retried."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import T2V, Service, make_service


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    running = make_service(tmp_path, max_attempts=2, lease_s=2.0)
    try:
        yield running
    finally:
        running.stop()


def submit(service: Service, prompt: str) -> str:
    with service.client() as client:
        response = client.post(f"/v2/{T2V}", json={"prompt": prompt, "duration": "3",
                                                  "generate_audio": False})
    assert response.status_code == 200, response.text
    return str(response.json()["request_id"])


def test_a_removed_outputs_folder_is_made_again_on_demand(service: Service) -> None:
    outputs = service.data_dir / "outputs"
    assert service.wait_for(submit(service, "a lighthouse"))["status"] == "COMPLETED"
    shutil.rmtree(outputs)
    request_id = submit(service, "a lighthouse at dusk")
    assert service.wait_for(request_id)["status"] == "COMPLETED"
    with service.client() as client:
        output = client.get(f"/v2/requests/{request_id}").json()["output"]
        video = client.get(output)
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"


def test_the_folder_removed_mid_job_retries_the_attempt(service: Service) -> None:
    outputs = service.data_dir / "outputs"
    request_id = submit(service, "a slow tide sleep=1.5")
    service.wait_for(request_id, states=("PROCESSING",))
    time.sleep(0.3)
    shutil.rmtree(outputs)
    body = service.wait_for(request_id)
    assert body["status"] == "COMPLETED", body


def test_a_storage_write_that_keeps_failing_is_retried_then_reported_as_storage_error(
        service: Service) -> None:
    outputs = service.data_dir / "outputs"
    shutil.rmtree(outputs)
    outputs.write_text("a file where the outputs folder should be")
    body = service.wait_for(submit(service, "a harbour"))
    assert body["status"] == "FAILED"
    assert body["error"] == "failed after 2 attempts; last: storage error"
    outputs.unlink()
    assert service.wait_for(submit(service, "a harbour again"))["status"] == "COMPLETED"
