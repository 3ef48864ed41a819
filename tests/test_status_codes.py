"""One test for each status code of the contract, against a real server and worker."""

from __future__ import annotations

import io
import time
from datetime import datetime
from pathlib import Path

import av
import httpx
import pytest

from conftest import I2V, T2V, Service, make_service

FAST = {"prompt": "a red kite", "duration": "3", "generate_audio": False}


def test_missing_and_invalid_key_are_401(shared_service: Service) -> None:
    with httpx.Client(base_url=shared_service.base_url) as client:
        missing = client.post(f"/v2/{T2V}", json=FAST)
        wrong = client.post(f"/v2/{T2V}", json=FAST, headers={"x-api-key": "rs_nope"})
        poll = client.get("/v2/requests/whatever/status")
    assert missing.status_code == wrong.status_code == poll.status_code == 401
    assert "x-api-key" in missing.json()["error"]
    assert wrong.json()["error"] == "invalid API key"


def test_revoked_key_is_401_at_once(shared_service: Service) -> None:
    key = shared_service.create_key("--credits", "5")
    with shared_service.client(key) as client:
        assert client.post(f"/v2/{T2V}", json={**FAST, "prompt": "sleep=0.1"}).status_code == 200
        shared_service.cli("keys", "revoke", key[:11])
        assert client.post(f"/v2/{T2V}", json=FAST).status_code == 401


def test_key_scoped_to_other_model_is_403(shared_service: Service) -> None:
    key = shared_service.create_key("--models", I2V)
    with shared_service.client(key) as client:
        response = client.post(f"/v2/{T2V}", json=FAST)
    assert response.status_code == 403
    assert T2V in response.json()["error"]


def test_unknown_model_is_404_with_contract_message(shared_service: Service) -> None:
    with shared_service.client() as client:
        response = client.post("/v2/kling-9-ultra", json=FAST)
        sync = client.post("/v1/kling-9-ultra", json=FAST)
    assert response.status_code == sync.status_code == 404
    assert response.json() == {"error": "model 'kling-9-ultra' not found"}


def test_unknown_request_and_other_keys_request_are_404(shared_service: Service) -> None:
    with shared_service.client() as client:
        job = client.post(f"/v2/{T2V}", json=FAST).json()["request_id"]
        assert client.get("/v2/requests/no-such-id/status").status_code == 404
        assert client.get("/v2/requests/no-such-id").status_code == 404
    other = shared_service.create_key()
    with shared_service.client(other) as client:
        assert client.get(f"/v2/requests/{job}/status").status_code == 404


def test_short_balance_is_406_and_holds_nothing(shared_service: Service) -> None:
    key = shared_service.create_key("--credits", "0.3")  # 3 s silent costs 0.24
    with shared_service.client(key) as client:
        first = client.post(f"/v2/{T2V}", json=FAST)
        assert first.status_code == 200
        assert float(first.headers["x-remaining-credits"]) == pytest.approx(0.06)
        second = client.post(f"/v2/{T2V}", json=FAST)
        assert second.status_code == 406
        assert "Insufficient Credits" in second.json()["error"]
        status = client.get(f"/v2/requests/{first.json()['request_id']}/status")
        assert float(status.headers["x-remaining-credits"]) == pytest.approx(0.06)


def test_failed_job_is_422_on_status_and_result_and_not_charged(shared_service: Service) -> None:
    key = shared_service.create_key("--credits", "10")
    with shared_service.client(key) as client:
        job = client.post(f"/v2/{T2V}", json={**FAST, "prompt": "please fail"}).json()
        shared_service.wait_for(job["request_id"], key=key)
        status = client.get(job["status_url"])
        result = client.get(job["response_url"])
    assert status.status_code == result.status_code == 422
    assert status.json()["status"] == result.json()["status"] == "FAILED"
    assert "told to fail" in result.json()["error"]
    assert float(result.headers["x-remaining-credits"]) == pytest.approx(10.0)
    assert [kind for kind, _ in shared_service.store().ledger(job["request_id"])] == [
        "hold", "release"]


def test_rate_limit_is_429_with_retry_headers(tmp_path: Path, backend: dict[str, str]) -> None:
    service = make_service(tmp_path, rate_limit=3, rate_window_s=60, **backend)
    try:
        with service.client() as client:
            codes = [client.post(f"/v2/{T2V}", json=FAST).status_code for _ in range(3)]
            limited = client.post(f"/v2/{T2V}", json=FAST)
            polled = client.get("/v2/requests/none/status")
    finally:
        service.stop()
    assert codes == [200, 200, 200]
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    reset = datetime.fromisoformat(limited.headers["x-rate-limit-reset-at-utc"])
    assert reset.tzinfo is not None
    assert polled.status_code == 404  # polls are not limited


def test_sync_past_deadline_is_504_and_job_stays_pollable(
        tmp_path: Path, backend: dict[str, str],
) -> None:
    service = make_service(tmp_path, sync_timeout_s=1, **backend)
    try:
        with service.client() as client:
            response = client.post(f"/v1/{T2V}", json={**FAST, "prompt": "sleep=3"})
            assert response.status_code == 504
            request_id = response.headers["x-request-id"]
            assert response.json()["request_id"] == request_id
            assert service.wait_for(request_id)["status"] == "COMPLETED"
    finally:
        service.stop()


def test_sync_call_answers_mp4_bytes(shared_service: Service) -> None:
    with shared_service.client() as client:
        response = client.post(f"/v1/{T2V}", json={**FAST, "aspect_ratio": "9:16"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["x-request-id"]
    assert float(response.headers["x-remaining-credits"]) > 0
    with av.open(io.BytesIO(response.content)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (1080, 1920)
        assert not container.streams.audio
        assert sum(1 for _ in container.decode(video=0)) == 72


def test_sync_failure_carries_request_id(shared_service: Service) -> None:
    with shared_service.client() as client:
        response = client.post(f"/v1/{T2V}", json={**FAST, "prompt": "fail"})
    assert response.status_code == 500
    assert "told to fail" in response.json()["error"]
    assert response.headers["x-request-id"]


def test_output_url_needs_no_key_and_serves_ranges(shared_service: Service) -> None:
    with shared_service.client() as client:
        job = client.post(f"/v2/{T2V}", json=FAST).json()
        shared_service.wait_for(job["request_id"])
        result = client.get(job["response_url"]).json()
    assert result["output"].startswith(shared_service.base_url + "/outputs/")
    assert len(result["output"].rsplit("/", 1)[1]) >= 40
    metrics = result["metrics"]
    assert metrics["engine"] == "fixture" and metrics["cost"] == pytest.approx(0.24)
    assert metrics["queue_time_s"] >= 0 and metrics["run_time_s"] > 0
    whole = httpx.get(result["output"])
    part = httpx.get(result["output"], headers={"Range": "bytes=100-199"})
    assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes"
    assert part.status_code == 206 and part.content == whole.content[100:200]
    guessed = result["output"][:-8] + "AAAA.mp4"
    assert httpx.get(guessed).status_code == 404


def test_expired_result_is_404_and_file_deleted(tmp_path: Path, backend: dict[str, str]) -> None:
    service = make_service(tmp_path, retention_s=1, **backend)
    try:
        with service.client() as client:
            job = client.post(f"/v2/{T2V}", json=FAST).json()
            service.wait_for(job["request_id"])
            output = client.get(job["response_url"]).json()["output"]
            file = service.data_dir / "outputs" / output.rsplit("/", 1)[1]
            assert file.exists()
            time.sleep(1.2)
            assert client.get(job["status_url"]).status_code == 404
            assert client.get(job["response_url"]).status_code == 404
            deadline = time.monotonic() + 5
            while file.exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not file.exists()
            assert httpx.get(output).status_code == 404
    finally:
        service.stop()


def test_output_answers_head_with_the_headers_of_get(shared_service: Service) -> None:
    with shared_service.client() as client:
        job = client.post(f"/v2/{T2V}", json=FAST).json()
        shared_service.wait_for(job["request_id"])
        output = client.get(job["response_url"]).json()["output"]
    for extra in ({}, {"Range": "bytes=100-199"}):
        got, head = httpx.get(output, headers=extra), httpx.head(output, headers=extra)
        assert head.status_code == got.status_code and head.content == b""
        for name in ("content-type", "content-length", "accept-ranges", "etag",
                     "last-modified", "content-range"):
            assert head.headers.get(name) == got.headers.get(name), name


@pytest.mark.parametrize(("bad_range", "status"), [
    ("bytes=99999999-", 416),
    ("lines=0-10", 400),
    ("bytes=200-100", 400),
    ("bytes=", 400),
])
def test_bad_range_is_a_json_error(shared_service: Service, bad_range: str, status: int) -> None:
    with shared_service.client() as client:
        job = client.post(f"/v2/{T2V}", json=FAST).json()
        shared_service.wait_for(job["request_id"])
        output = client.get(job["response_url"]).json()["output"]
    size = len(httpx.get(output).content)
    for method in ("GET", "HEAD"):
        response = httpx.request(method, output, headers={"Range": bad_range})
        assert response.status_code == status, (method, response.text)
        assert response.headers["content-type"] == "application/json"
        if method == "GET":
            assert response.json()["error"].startswith("Range:")
        if status == 416:
            assert response.headers["content-range"] == f"bytes */{size}"
