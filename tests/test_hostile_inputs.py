"""Hostile input URLs against a real server with the default policy (no allowlist).

Only loopback spellings are used, so even a policy bug could reach nothing but
the test's own image server, which counts the requests it gets.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from test_fetch_policy import send, serve_routes
from test_hostile_images import png_claiming

from conftest import I2V, T2V, Service, make_service, png_bytes


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    svc = make_service(tmp_path_factory.mktemp("strict"), rate_limit=0, fetch_allow_cidrs="")
    yield svc
    svc.stop()


def submit_all(service: Service, urls: list[str]) -> list[dict[str, object]]:
    with service.client() as client:
        ids = []
        for url in urls:
            response = client.post(f"/v2/{I2V}", json={
                "prompt": "p", "duration": "3", "generate_audio": False, "start_image_url": url})
            assert response.status_code == 200, response.text
            ids.append(response.json()["request_id"])
    return [service.wait_for(request_id) for request_id in ids]


def test_loopback_urls_fail_the_job_without_a_request(strict: Service) -> None:
    with serve_routes("127.0.0.1", {"/start.png": send(200, png_bytes())}) as server:
        urls = [f"http://{host}:{server.port}/start.png" for host in (
            "127.0.0.1", "localhost", "[::1]", "[::ffff:127.0.0.1]", "2130706433",
            "0177.0.0.1", "0x7f.1", "127.1", "0.0.0.0")]
        for url, status in zip(urls, submit_all(strict, urls), strict=True):
            assert status["status"] == "FAILED", url
            error = str(status["error"])
            assert error.startswith(f"start_image_url ({url}): refused"), error
        assert server.hits == []
    with strict.client() as client:
        response = client.post(f"/v2/{T2V}", json={"prompt": "p", "duration": "3",
                                                   "generate_audio": False})
    assert strict.wait_for(response.json()["request_id"])["status"] == "COMPLETED"


def test_bomb_as_data_url_fails_the_job_and_the_worker_goes_on(strict: Service) -> None:
    bomb = "data:image/png;base64," + base64.b64encode(png_claiming(40_000, 40_000)).decode()
    [status] = submit_all(strict, [bomb])
    assert status["status"] == "FAILED"
    assert "too large to decode" in str(status["error"])
    with strict.client() as client:
        response = client.post(f"/v2/{T2V}", json={"prompt": "p", "duration": "3",
                                                   "generate_audio": False})
    assert strict.wait_for(response.json()["request_id"])["status"] == "COMPLETED"
