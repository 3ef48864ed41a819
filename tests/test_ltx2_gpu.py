"""Real LTX-2 weights on a CUDA GPU, through the real service. Skipped without both.

The weights are found the way the engine finds them (REELSERVE_MODEL_PATH, or what
`reelserve models pull ltx-2` put in REELSERVE_DATA_DIR/models); nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_ltx2_engine import data_url, probe, run_job

from reelserve.errors import EngineUnavailable
from reelserve.model_store import resolve_model_path
from reelserve.settings import settings_from_env

from conftest import I2V, Service, make_service, png_bytes

pytestmark = pytest.mark.gpu


def _real_model() -> Path:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    try:
        return resolve_model_path(settings_from_env().models)
    except EngineUnavailable as missing:
        pytest.skip(f"no LTX-2 weights: {missing.message}")


@pytest.fixture(scope="module")
def gpu_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    model = _real_model()
    svc = make_service(tmp_path_factory.mktemp("ltx2-gpu"), engine="ltx2", model_path=model,
                       rate_limit=0, sync_timeout_s=1800)
    yield svc
    svc.stop()


@pytest.mark.timeout(1800)
def test_real_weights_image_to_video_with_audio(gpu_service: Service) -> None:
    _, data = run_job(gpu_service, I2V, {
        "prompt": "the camera slowly pushes in while waves roll onto the beach",
        "duration": "5", "start_image_url": data_url(png_bytes((1280, 720), seed=4)),
        "end_image_url": data_url(png_bytes((1280, 720), seed=5)), "seed": 11,
    }, timeout=1500)
    found = probe(data)
    assert (found["size"], found["frames"]) == ((1920, 1080), 120)
    assert found["audio"] == ("aac", 2, 48_000)
