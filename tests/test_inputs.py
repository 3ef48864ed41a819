"""Input images from loopback http and data: URLs; bad ones fail the job, naming URL and reason."""

from __future__ import annotations

import base64

import pytest

from conftest import I2V, ImageServer, Service, free_port, png_bytes


def _submit_and_wait(service: Service, payload: dict[str, object]) -> dict[str, object]:
    with service.client() as client:
        response = client.post(f"/v2/{I2V}", json={"prompt": "x", "duration": "3",
                                                   "generate_audio": False, **payload})
        assert response.status_code == 200, response.text
        request_id = response.json()["request_id"]
        service.wait_for(request_id)
        return dict(client.get(f"/v2/requests/{request_id}").json())


def test_http_start_and_end_images_complete(shared_service: Service,
                                            image_server: ImageServer) -> None:
    result = _submit_and_wait(shared_service, {
        "start_image_url": image_server.url("start.png"),
        "end_image_url": image_server.url("end.png")})
    assert result["status"] == "COMPLETED"


def test_data_url_start_image_completes(shared_service: Service) -> None:
    data_url = "data:image/png;base64," + base64.b64encode(png_bytes(seed=3)).decode()
    result = _submit_and_wait(shared_service, {"start_image_url": data_url})
    assert result["status"] == "COMPLETED"


@pytest.mark.parametrize(("field", "name", "reason"), [
    ("start_image_url", "notes.txt", "is not an image"),
    ("start_image_url", "missing.png", "HTTP 404"),
    ("end_image_url", "notes.txt", "is not an image"),
])
def test_bad_image_fails_the_job_naming_url_and_reason(
    shared_service: Service, image_server: ImageServer, field: str, name: str, reason: str,
) -> None:
    payload = {"start_image_url": image_server.url("start.png"), field: image_server.url(name)}
    result = _submit_and_wait(shared_service, payload)
    assert result["status"] == "FAILED"
    error = str(result["error"])
    assert field in error
    assert image_server.url(name) in error
    assert reason in error


def test_unreachable_url_fails_the_job(shared_service: Service) -> None:
    closed = f"http://127.0.0.1:{free_port()}/start.png"  # nothing listens there
    result = _submit_and_wait(shared_service, {"start_image_url": closed})
    assert result["status"] == "FAILED"
    assert closed in str(result["error"])
    assert "could not be fetched" in str(result["error"])


def test_bad_data_url_is_a_400_at_submit(shared_service: Service) -> None:
    # Inline images are decoded once at submit (reelserve/input_blobs.py), so a bad
    # payload is refused there, naming the field, instead of failing the job later.
    with shared_service.client() as client:
        response = client.post(f"/v2/{I2V}", json={
            "prompt": "x", "start_image_url": "data:image/png;base64,!!!not-base64"})
    assert response.status_code == 400
    assert response.json()["error"].startswith("start_image_url: must be valid base64")


def test_element_images_are_fetched(shared_service: Service, image_server: ImageServer) -> None:
    result = _submit_and_wait(shared_service, {
        "prompt": "@Element1 walks in",
        "start_image_url": image_server.url("start.png"),
        "elements": [{"frontal_image_url": image_server.url("notes.txt"),
                      "reference_image_urls": [image_server.url("start.png")]}]})
    assert result["status"] == "FAILED"
    assert "elements[0].frontal_image_url" in str(result["error"])
