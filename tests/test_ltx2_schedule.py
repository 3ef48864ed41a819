"""Schedules for any step count: the full model with REELSERVE_LTX2_STEPS=1 (whose terminal
stretch divided by zero), listed sigmas sampled as listed, and a full-model two-stage
shot on the tiny model with one base step and the guided refine."""

from __future__ import annotations

import itertools
import math
import random
from pathlib import Path
from typing import Any

import pytest
from tiny_ltx2 import STG_LAYERS, save_tiny_ltx2

from reelserve.catalog import MODELS
from reelserve.catalog.params import parse_submit
from reelserve.engines import load_engine
from reelserve.engines.base import GenerationInputs
from reelserve.engines.ltx2.plan import ShotJob
from reelserve.engines.ltx2.profile import REFINE_SIGMAS
from reelserve.settings import Settings

torch: Any = pytest.importorskip("torch")
schedule: Any = pytest.importorskip("reelserve.engines.ltx2.schedule")
diffusers: Any = pytest.importorskip("diffusers")

# The full model's scheduler as diffusers' converter writes it (tests/tiny_ltx2.py too).
FULL = {"use_dynamic_shifting": True, "base_shift": 0.95, "max_shift": 2.05,
        "base_image_seq_len": 1024, "max_image_seq_len": 4096, "shift_terminal": 0.1}
MU = 2.05  # what calculate_shift gives at 4,096 tokens


def test_the_stock_scheduler_makes_nan_sigmas_for_one_step() -> None:
    stock = diffusers.FlowMatchEulerDiscreteScheduler(**FULL)
    with pytest.warns(RuntimeWarning):
        stock.set_timesteps(sigmas=[1.0], mu=MU)
    assert math.isnan(float(stock.sigmas[0]))  # why StretchSafeScheduler exists


@pytest.mark.parametrize("steps", [1, 2, 3, 8, 40])
def test_every_step_count_gives_a_valid_schedule(steps: int) -> None:
    scheduler = schedule.StageSchedulers(diffusers.FlowMatchEulerDiscreteScheduler(**FULL))
    shifting = scheduler.for_sampling({"num_inference_steps": steps})
    # The pipeline's own default sigmas for a step count.
    sigmas = [1.0 - i * (1.0 - 1.0 / steps) / max(1, steps - 1) for i in range(steps)]
    shifting.set_timesteps(sigmas=sigmas, mu=MU)
    got = [float(s) for s in shifting.sigmas]
    assert len(got) == steps + 1 and got[-1] == 0.0
    assert all(math.isfinite(s) and 0.0 <= s <= 1.0 for s in got)
    assert all(a > b for a, b in itertools.pairwise(got))
    assert got[0] == pytest.approx(1.0)
    if steps > 1:
        assert got[-2] == pytest.approx(0.1)  # stretched to shift_terminal as before


def test_listed_sigmas_are_sampled_exactly_as_listed() -> None:
    scheduler = schedule.StageSchedulers(diffusers.FlowMatchEulerDiscreteScheduler(**FULL))
    listed = scheduler.for_sampling({"sigmas": list(REFINE_SIGMAS)})
    listed.set_timesteps(sigmas=list(REFINE_SIGMAS), mu=MU)
    assert [float(s) for s in listed.sigmas] == pytest.approx([*REFINE_SIGMAS, 0.0])
    shifted = scheduler.for_sampling({"num_inference_steps": 3})
    shifted.set_timesteps(sigmas=list(REFINE_SIGMAS), mu=MU)
    assert float(shifted.sigmas[0]) != pytest.approx(REFINE_SIGMAS[0])  # the stock behaviour


def test_full_model_one_base_step_and_the_guided_refine_run(tmp_path: Path) -> None:
    from reelserve.engines.ltx2.engine import PromptCache

    model = save_tiny_ltx2(tmp_path / "full", distilled=False, layers=STG_LAYERS)
    engine: Any = load_engine("ltx2", Settings(model_path=str(model), ltx2_long_side=128,
                                               ltx2_steps=1).engines)
    assert engine.profile.base_steps == 1 and not engine.profile.distilled
    seen: list[list[float]] = []
    params = parse_submit(MODELS["kling-3-standard-text2video"],
                          {"prompt": "a cat", "duration": "3"}, random.Random(3))

    def on_step(pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        if step == 0:
            seen.append([float(s) for s in pipe.scheduler.sigmas])
        return {}

    video, audio, _rate = engine.render_shot(params, GenerationInputs(),
                                             ShotJob(0, "a cat", 8, 9),
                                             PromptCache(engine, None), on_step)
    assert seen[0] == [1.0, 0.0]  # one base step from pure noise
    assert seen[1] == pytest.approx([*REFINE_SIGMAS, 0.0])  # the refine's listed sigmas
    assert tuple(video.shape) == (9, 3, 128, 128)
    assert bool(torch.isfinite(video).all()) and bool(torch.isfinite(torch.as_tensor(audio)).all())
