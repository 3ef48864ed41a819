"""Outputs in S3-compatible object storage, against a server the test starts on loopback.

The server is moto's server mode (`moto[server]` from PyPI): an S3 API emulator,
not a real object store. No real S3-compatible server installs from the
package registries this project uses; see docs/deploy.md.
"""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import boto3
import httpx
import pytest

from conftest import T2V, Service, free_port, make_service

BUCKET = "reelserve-test"
FAST = {"duration": "3", "aspect_ratio": "1:1", "generate_audio": False}


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                               "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    server.terminate()
    server.wait(10)


@pytest.fixture
def s3_service(tmp_path: Path, s3_endpoint: str,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Service, Any]]:
    for name, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket=BUCKET)
    service = make_service(tmp_path, storage=f"s3://{BUCKET}/videos",
                           s3_endpoint_url=s3_endpoint, retention_s=3)
    yield service, client
    service.stop()
    client.close()


def test_outputs_go_to_the_bucket_and_the_url_stays_a_capability(
        s3_service: tuple[Service, Any]) -> None:
    service, client = s3_service
    with service.client() as http:
        request_id = http.post(f"/v2/{T2V}", json={**FAST, "prompt": "sleep=0.1"}).json()[
            "request_id"]
        assert service.wait_for(request_id)["status"] == "COMPLETED"
        output = http.get(f"/v2/requests/{request_id}").json()["output"]
    assert output.startswith(f"{service.base_url}/outputs/")
    key = output.rsplit("/", 1)[1]
    listed = client.list_objects_v2(Bucket=BUCKET)["Contents"]
    assert [item["Key"] for item in listed] == [f"videos/{key}"]
    assert not any((service.data_dir / "outputs" / "staging").iterdir())

    redirect = httpx.get(output)  # no key needed
    assert redirect.status_code == 307
    whole = httpx.get(output, follow_redirects=True)
    assert whole.status_code == 200
    part = httpx.get(output, follow_redirects=True, headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and part.content == whole.content[:100]
    with av.open(io.BytesIO(whole.content)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 72

    # Retention ends: the sweeper deletes the object too.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and client.list_objects_v2(Bucket=BUCKET)["KeyCount"]:
        time.sleep(0.5)
    assert client.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0


def test_sync_call_streams_the_bytes_from_the_bucket(s3_service: tuple[Service, Any]) -> None:
    service, _ = s3_service
    with service.client() as http:
        response = http.post(f"/v1/{T2V}", json={**FAST, "prompt": "sleep=0.1"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(response.content)) as container:
        assert (container.streams.video[0].width, container.streams.video[0].height) == (
            1080, 1080)


def test_input_blobs_live_in_the_bucket_beside_the_outputs(
        tmp_path: Path, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from reelserve.errors import NotFound
    from reelserve.storage import S3Storage

    for name, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket=BUCKET + "-inputs")
    storage = S3Storage(f"s3://{BUCKET}-inputs/videos", tmp_path / "staging",
                        endpoint_url=s3_endpoint)
    name = "b" * 32
    storage.put_input(name, b"image bytes")
    storage.put_input(name + ".job", b"job-1")
    assert storage.read_input(name) == b"image bytes"
    assert sorted(listed for listed, _ in storage.list_inputs()) == [name, name + ".job"]
    keys = [item["Key"] for item in client.list_objects_v2(
        Bucket=BUCKET + "-inputs")["Contents"]]
    assert sorted(keys) == [f"videos/inputs/{name}", f"videos/inputs/{name}.job"]
    storage.delete_input(name)
    with pytest.raises(NotFound):
        storage.read_input(name)
    client.close()
