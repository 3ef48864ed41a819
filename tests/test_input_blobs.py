"""Inline images become input blobs at submit: small job rows, blobs gone with their job."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reelserve.input_blobs import InputBlobs
from reelserve.media.inputs import INPUT_SCHEME
from reelserve.storage import LocalStorage

from conftest import I2V, Service, make_service, png_bytes


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    running = make_service(tmp_path, retention_s=3.0, sweep_interval_s=0.5)
    try:
        yield running
    finally:
        running.stop()


def inputs_dir(service: Service) -> Path:
    return service.data_dir / "outputs" / "inputs"


def test_an_inline_image_is_stored_once_and_the_job_row_holds_a_reference(
        service: Service) -> None:
    image = png_bytes(seed=5)
    data_url = "data:image/png;base64," + base64.b64encode(image).decode()
    with service.client() as client:
        response = client.post(f"/v2/{I2V}", json={
            "prompt": "x", "duration": "3", "start_image_url": data_url,
            "elements": [{"frontal_image_url": data_url}],
            "webhook_url": "http://127.0.0.1:9/hook"})
        assert response.status_code == 200, response.text
        request_id = response.json()["request_id"]
    job = service.store().get_job(request_id)
    assert job is not None and job.webhook_url == "http://127.0.0.1:9/hook"
    reference = job.params.start_image_url
    assert reference is not None and reference.startswith(INPUT_SCHEME) and len(reference) < 80
    assert job.params.elements[0].frontal_image_url == reference  # one blob for both
    blob = inputs_dir(service) / reference.removeprefix(INPUT_SCHEME)
    assert blob.read_bytes() == image
    assert (blob.parent / (blob.name + ".job")).read_text() == request_id
    assert service.wait_for(request_id)["status"] == "COMPLETED"  # the worker read the blob

    deadline = time.monotonic() + 30  # retention 3 s, sweeps every 0.5 s
    while blob.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not blob.exists() and service.store().get_job(request_id) is None


@pytest.mark.parametrize(("payload", "rule"), [
    ("data:image/png;base64,!!!not-base64", "must be valid base64"),
    ("data:image/png;base64," + "A" * 80, "must be at most 40 bytes once decoded"),
])
def test_a_bad_inline_image_is_a_400_naming_the_field(tmp_path: Path, payload: str,
                                                      rule: str) -> None:
    service = make_service(tmp_path, max_input_bytes=40)
    try:
        with service.client() as client:
            response = client.post(f"/v2/{I2V}", json={"prompt": "x",
                                                       "start_image_url": payload})
    finally:
        service.stop()
    assert response.status_code == 400
    assert response.json()["error"].startswith("start_image_url: " + rule)
    assert not any((service.data_dir / "outputs" / "inputs").glob("*"))


def test_sweep_keeps_blobs_of_live_jobs_and_fresh_unbound_ones(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "outputs")
    blobs = InputBlobs(storage, 1000)
    names = {kind: kind * 24 for kind in ("a", "b", "c", "d")}
    for name in names.values():
        storage.put_input(name, b"image")
    storage.put_input(names["a"] + ".job", b"job-alive")
    storage.put_input(names["b"] + ".job", b"job-expired")

    async def known(job_id: str) -> bool:  # the store seam: does the job still exist?
        return job_id == "job-alive"

    assert asyncio.run(blobs.sweep(known, now=time.time())) == 1  # b: its job expired
    left = {name for name, _ in storage.list_inputs()}
    assert left == {names["a"], names["a"] + ".job", names["c"], names["d"]}
    later = time.time() + 7200  # unbound blobs past the grace: their submit never finished
    assert asyncio.run(blobs.sweep(known, now=later)) == 2
    assert {name for name, _ in storage.list_inputs()} == {names["a"], names["a"] + ".job"}
