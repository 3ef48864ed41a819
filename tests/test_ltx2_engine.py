"""The ltx2 engine on tiny random weights, through the real API, worker and engine child.

The tiny model is saved with ``save_pretrained`` and loaded with ``from_pretrained``
from its directory, like real weights. Random weights make noise, so these tests
check the contract's container: size, exact frame count, the audio track.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import pytest
from tiny_ltx2 import save_tiny_ltx2

from conftest import I2V, T2V, Service, make_service, png_bytes

# The distilled tiny model, two of its sigmas, rendered 128 wide: base 64x64, the
# latent upsampler, refine at 128x128; frames scaled to the contract's size.
TINY_SETTINGS = {"engine": "ltx2", "ltx2_long_side": 128, "ltx2_steps": 2, "rate_limit": 0}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_ltx2(tmp_path_factory.mktemp("tiny-ltx2"))


@pytest.fixture(scope="module")
def ltx2_service(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Iterator[Service]:
    svc = make_service(tmp_path_factory.mktemp("ltx2"), model_path=tiny_model, **TINY_SETTINGS)
    yield svc
    svc.stop()


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def run_job(service: Service, slug: str, body: dict[str, Any],
            timeout: float = 120) -> tuple[dict[str, Any], bytes]:
    with service.client() as client:
        submitted = client.post(f"/v2/{slug}", json=body)
        assert submitted.status_code == 200, submitted.text
        request_id = submitted.json()["request_id"]
        status = service.wait_for(request_id, timeout=timeout)
        assert status["status"] == "COMPLETED", status
        result = client.get(f"/v2/requests/{request_id}").json()
        video = client.get(result["output"])
    assert video.status_code == 200
    return result, video.content


def probe(data: bytes) -> dict[str, Any]:
    """Size, rate, decoded frame count and audio layout of an MP4."""
    with av.open(io.BytesIO(data)) as container:
        video = container.streams.video[0]
        found: dict[str, Any] = {
            "size": (video.width, video.height), "rate": video.average_rate,
            "codec": video.codec_context.name, "audio": None,
        }
        if container.streams.audio:
            audio = container.streams.audio[0]
            found["audio"] = (audio.codec_context.name, audio.codec_context.layout.nb_channels,
                              audio.codec_context.sample_rate)
            found["audio_s"] = float(audio.duration * audio.time_base) if audio.duration else 0.0
        found["frames"] = sum(1 for _ in container.decode(video=0))
    return found


def test_text_to_video_with_audio(ltx2_service: Service) -> None:
    result, data = run_job(ltx2_service, T2V, {
        "prompt": "a lighthouse at night in the rain, slow pan", "duration": "3", "seed": 7,
    })
    found = probe(data)
    assert found["size"] == (1920, 1080) and found["rate"] == 24 and found["codec"] == "h264"
    assert found["frames"] == 3 * 24
    assert found["audio"] == ("aac", 2, 48_000)
    assert found["audio_s"] == pytest.approx(3.0, abs=0.05)
    assert result["metrics"]["engine"] == "ltx2"


def test_text_to_video_without_audio_portrait(ltx2_service: Service) -> None:
    _, data = run_job(ltx2_service, T2V, {
        "prompt": "snow over a forest", "duration": "3", "aspect_ratio": "9:16",
        "generate_audio": False, "cfg_scale": 0.9,
    })
    found = probe(data)
    assert found["size"] == (1080, 1920)
    assert found["frames"] == 72
    assert found["audio"] is None


def test_image_to_video_with_start_and_end_images(ltx2_service: Service) -> None:
    _, data = run_job(ltx2_service, I2V, {
        "prompt": "the camera orbits the subject", "duration": "3", "aspect_ratio": "1:1",
        "start_image_url": data_url(png_bytes((320, 180), seed=1)),
        "end_image_url": data_url(png_bytes((180, 320), seed=2)),
    })
    found = probe(data)
    assert found["size"] == (1080, 1080)
    assert found["frames"] == 72
    assert found["audio"] == ("aac", 2, 48_000)


def test_cancel_stops_a_running_ltx2_job(ltx2_service: Service) -> None:
    with ltx2_service.client() as client:
        submitted = client.post(f"/v2/{T2V}", json={"prompt": "rain over the ocean",
                                                    "duration": "10"})
        request_id = submitted.json()["request_id"]
        ltx2_service.wait_for(request_id, ("PROCESSING",), timeout=60)
        assert client.post(f"/v2/requests/{request_id}/cancel").status_code == 200
    status = ltx2_service.wait_for(request_id, ("FAILED",), timeout=60)
    assert status["canceled"] is True and status["error"] == "canceled"


def test_multi_prompt_shots_add_up_to_the_exact_length(ltx2_service: Service) -> None:
    _, data = run_job(ltx2_service, T2V, {
        "prompt": "a city street at sunset",
        "multi_prompt": [{"prompt": "wide shot of the street", "duration": "3"},
                         {"prompt": "close on a cat", "duration": "4"}],
    })
    found = probe(data)
    assert found["size"] == (1920, 1080)
    assert found["frames"] == (3 + 4) * 24
    assert found["audio_s"] == pytest.approx(7.0, abs=0.05)
