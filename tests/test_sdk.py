"""The official segmind SDK 1.3.0, running the seed pages' samples against reelserve.

The samples are copied from `../shared/seeds/` with one change, the client's
base URL and key. The image-to-video sample's empty `start_image_url` is filled
with a picture served from loopback.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from segmind import InferenceFailed, SegmindClient

from conftest import I2V, T2V, ImageServer, Service, make_service


@pytest.fixture(scope="module")
def preview_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    svc = make_service(tmp_path_factory.mktemp("sdk"), engine="preview", rate_limit=0)
    yield svc
    svc.stop()


@pytest.fixture
def client(preview_service: Service) -> Iterator[SegmindClient]:
    """The seed samples' client, pointed at reelserve.

    SDK 1.3.0 has no ``close()``; its httpx client is closed here so that the
    tests' ResourceWarning check stays on.
    """
    sdk = SegmindClient(base_url=f"{preview_service.base_url}/v1", api_key=preview_service.api_key)
    yield sdk
    sdk._client.close()


def _assert_seed_video(data: bytes) -> None:
    """1920x1080, 120 frames at 24 fps, AAC stereo: what the seed payload asks for."""
    with av.open(io.BytesIO(data)) as container:
        video = container.streams.video[0]
        assert (video.width, video.height) == (1920, 1080)
        assert video.average_rate == 24
        assert video.codec_context.name == "h264"
        audio = container.streams.audio[0]
        assert audio.codec_context.name == "aac"
        assert audio.codec_context.layout.nb_channels == 2
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == 120


def _run_seed_sample(client: SegmindClient, slug: str, payload: dict[str, Any]) -> Any:
    job = client.submit_async(slug, **payload)
    assert job.request_id
    try:
        result = job.wait(timeout=900, interval=2.0)
    except InferenceFailed as error:  # the sample prints this; the test fails on it
        pytest.fail(f"failed: {error.detail}")
    return result


def test_text2video_seed_sample(preview_service: Service, client: SegmindClient) -> None:
    payload = {
        "prompt": "Slow cinematic push-in through an empty ancient temple. Fog drifts lazily "
                  "through the valley below. Golden light catches dust particles floating "
                  "between stone pillars.",
        "duration": "5",
        "cfg_scale": 0.5,
        "aspect_ratio": "16:9",
        "generate_audio": True,
        "negative_prompt": "blur, distort, and low quality",
    }
    result = _run_seed_sample(client, T2V, payload)
    assert result["status"] == "COMPLETED"
    assert result["output"].startswith(preview_service.base_url + "/")
    assert result["metrics"]["run_time_s"] > 0
    _assert_seed_video(httpx.get(result["output"], timeout=30).content)


def test_image2video_seed_sample(client: SegmindClient, image_server: ImageServer) -> None:
    payload = {
        "prompt": "The subject moves naturally with realistic physics and smooth camera motion.",
        "duration": "5",
        "cfg_scale": 0.5,
        "aspect_ratio": "16:9",
        "generate_audio": True,
        "negative_prompt": "blur, distort, and low quality",
        "start_image_url": image_server.url("start.png"),
    }
    result = _run_seed_sample(client, I2V, payload)
    assert result["status"] == "COMPLETED"
    _assert_seed_video(httpx.get(result["output"], timeout=30).content)


def test_run_sync_answers_mp4_bytes(client: SegmindClient) -> None:
    response = client.run_sync(
        T2V, prompt="a lighthouse at night, rain", duration="3", aspect_ratio="1:1")
    assert response.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(response.content)) as container:
        video = container.streams.video[0]
        assert (video.width, video.height) == (1080, 1080)
        assert sum(1 for _ in container.decode(video=0)) == 72


def test_sdk_surfaces_a_failed_job(client: SegmindClient, image_server: ImageServer) -> None:
    job = client.submit_async(
        I2V, prompt="x", start_image_url=image_server.url("notes.txt"))
    with pytest.raises(InferenceFailed) as raised:
        job.wait(timeout=60, interval=0.2)
    assert "notes.txt" in str(raised.value.detail)


def test_run_answers_the_completed_body(client: SegmindClient, tmp_path: Path) -> None:
    result = client.run(T2V, prompt="snow over a forest", duration="3", generate_audio=False)
    assert result["status"] == "COMPLETED"
    target = tmp_path / "out.mp4"
    target.write_bytes(httpx.get(result["output"], timeout=30).content)
    with av.open(str(target)) as container:
        assert not container.streams.audio
