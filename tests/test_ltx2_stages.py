"""The engine's real code paths on the tiny model, in this process: the upsampler runs
between the stages, the STG block runs, raw audio has the clip's length, speed options.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import pytest
from tiny_ltx2 import STG_LAYERS, save_tiny_ltx2

from reelserve.catalog import MODELS
from reelserve.catalog.params import parse_submit
from reelserve.engines import load_engine
from reelserve.engines.base import GenerationInputs
from reelserve.engines.ltx2.plan import ShotJob
from reelserve.errors import EngineUnavailable, InvalidSetting
from reelserve.settings import Settings

pytest.importorskip("torch")
PARAMS = parse_submit(MODELS["kling-3-standard-text2video"],
                      {"prompt": "a cat in the city", "duration": "3"}, random.Random(3))
SHORT = ShotJob(0, "a cat in the city", frames=8, generate_frames=9)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_ltx2(tmp_path_factory.mktemp("tiny-ltx2"))


@pytest.fixture(scope="module")
def engine(tiny_model: Path) -> Iterator[Any]:
    yield load_engine("ltx2", Settings(model_path=str(tiny_model), ltx2_long_side=128,
                                       ltx2_steps=2).engines)


def _shot(engine: Any, shot: ShotJob = SHORT) -> tuple[Any, Any, int]:
    from reelserve.engines.ltx2.engine import PromptCache

    result: tuple[Any, Any, int] = engine.render_shot(
        PARAMS, GenerationInputs(), shot, PromptCache(engine, None), lambda *a: {})
    return result


def test_two_stages_run_the_latent_upsampler_and_refine_at_twice_the_size(engine: Any) -> None:
    sizes: list[tuple[int, ...]] = []
    handle = engine.upsampler.register_forward_hook(
        lambda module, args, output: sizes.append((tuple(args[0].shape), tuple(output.shape))))
    try:
        video, _audio, _rate = _shot(engine)
    finally:
        handle.remove()
    [(before, after)] = sizes
    assert before[-2:] == (2, 2) and after[-2:] == (4, 4)  # 64x64 base -> 128x128 at 32x
    assert tuple(video.shape) == (9, 3, 128, 128)  # (frames, channels, height, width)
    assert [s.name for s in engine.stages_for(PARAMS, 73)] == ["base", "upsample", "refine"]


def test_raw_audio_is_the_duration_times_the_vocoder_rate_before_any_padding(
        engine: Any) -> None:
    shot = ShotJob(0, "a cat in the city", frames=72, generate_frames=73)
    _video, audio, rate = _shot(engine, shot)
    assert rate == 24_000
    assert audio.shape[0] == 2
    assert audio.shape[1] == pytest.approx(73 / 24 * rate, rel=0.02)  # ~73,000 samples


def test_the_profile_stg_block_exists_and_runs(tmp_path: Path) -> None:
    model = save_tiny_ltx2(tmp_path / "full", distilled=False, layers=STG_LAYERS)
    engine = load_engine("ltx2", Settings(model_path=str(model), ltx2_long_side=128,
                                          ltx2_steps=2, ltx2_profile="fast").engines)
    block = engine.profile.base["spatio_temporal_guidance_blocks"]  # type: ignore[attr-defined]
    assert block == [29] and engine.profile.passes_per_step == 4  # type: ignore[attr-defined]
    perturbed: list[bool] = []

    def spy(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        mask = kwargs.get("perturbation_mask")
        perturbed.append(bool(kwargs.get("all_perturbed")) or (
            mask is not None and bool((mask == 0).any())))

    transformer: Any = engine.pipe.transformer  # type: ignore[attr-defined]
    handle = transformer.transformer_blocks[29].register_forward_pre_hook(spy, with_kwargs=True)
    try:
        _shot(engine)
    finally:
        handle.remove()
    assert perturbed and any(perturbed)  # the STG pass perturbs block 29


@pytest.mark.parametrize("settings", [
    {"ltx2_weights": "fp8"},
    {"ltx2_cache": "first-block", "ltx2_cache_threshold": 0.5},
    {"ltx2_attention": "sdpa"},
])
def test_speed_options_still_make_a_video_that_decodes(
        tiny_model: Path, tmp_path: Path, settings: dict[str, Any]) -> None:
    engine = load_engine("ltx2", Settings(model_path=str(tiny_model), ltx2_long_side=128,
                                          ltx2_steps=2, **settings).engines)
    if "ltx2_weights" in settings:
        storage = engine.runtime.placement.storage  # type: ignore[attr-defined]
        assert storage["transformer"] == "fp8"
    output = tmp_path / "out.mp4"
    engine.generate(PARAMS, GenerationInputs(), output, lambda f: None, lambda: False)
    with av.open(str(output)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 72


def test_an_attention_backend_that_is_not_installed_is_refused_by_name(
        tiny_model: Path) -> None:
    with pytest.raises(EngineUnavailable, match="REELSERVE_LTX2_ATTENTION=sage"):
        load_engine("ltx2", Settings(model_path=str(tiny_model), ltx2_long_side=128,
                                     ltx2_attention="sage").engines)


def test_an_unknown_profile_is_refused_by_name_when_the_settings_load(tiny_model: Path) -> None:
    with pytest.raises(InvalidSetting, match="REELSERVE_LTX2_PROFILE: must be one of"):
        Settings(model_path=str(tiny_model), ltx2_profile="turbo")
