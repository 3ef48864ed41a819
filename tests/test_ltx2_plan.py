"""The ltx2 engine's parameter mapping (docs/engines.md), without a model."""

from __future__ import annotations

import random
from typing import Any

import pytest
from PIL import Image

from reelserve.catalog import MODELS
from reelserve.catalog.params import JobParams, parse_submit
from reelserve.engines.base import ElementImages, GenerationInputs, VoiceSample
from reelserve.engines.ltx2.plan import (
    ELEMENT_GUIDE_STRENGTH,
    Guide,
    generation_frames,
    generation_size,
    guidance_scale,
    plan_shots,
    rewrite_prompt,
)

T2V, I2V = MODELS["kling-3-standard-text2video"], MODELS["kling-3-standard-image2video"]
PICTURE = Image.new("RGB", (8, 8))
URL = "https://example.com/a.png"


def _params(model: Any = T2V, **body: Any) -> JobParams:
    return parse_submit(model, {"prompt": "a lighthouse at night", **body}, random.Random(1))


@pytest.mark.parametrize(("aspect", "size"), [
    ("16:9", (960, 544)), ("9:16", (544, 960)), ("1:1", (704, 704)),
])
def test_generation_size_is_a_multiple_of_32_with_the_area_of_the_16_9_clip(
        aspect: str, size: tuple[int, int]) -> None:
    assert generation_size(aspect, 960) == size


def test_tiny_generation_sizes_never_drop_below_32() -> None:
    assert generation_size("16:9", 32) == (32, 32)
    assert generation_size("9:16", 64) == (32, 64)


@pytest.mark.parametrize(("frames", "generated"), [(72, 73), (120, 121), (360, 361), (74, 81)])
def test_generated_frames_are_the_smallest_8k_plus_1_that_cover_the_clip(
        frames: int, generated: int) -> None:
    assert generation_frames(frames) == generated


def test_cfg_scale_half_is_the_model_default_and_zero_turns_guidance_off() -> None:
    assert guidance_scale(0.5, 4.0) == pytest.approx(4.0)
    assert guidance_scale(0.0, 4.0) == pytest.approx(1.0)
    assert guidance_scale(1.0, 4.0) == pytest.approx(7.0)
    assert guidance_scale(0.9, 1.0) == 1.0  # a distilled model samples without guidance


def test_start_and_end_images_pin_the_first_and_last_frame() -> None:
    params = _params(I2V, start_image_url=URL, end_image_url=URL, duration="4")
    [shot] = plan_shots(params, GenerationInputs(start_image=PICTURE, end_image=PICTURE))
    assert (shot.frames, shot.generate_frames) == (96, 97)
    assert shot.guides == (Guide("start", 0), Guide("end", -1))


def test_multi_prompt_is_one_generation_per_shot_with_images_at_the_ends() -> None:
    params = _params(I2V, start_image_url=URL, end_image_url=URL, multi_prompt=[
        {"prompt": "wide shot of the coast", "duration": "3"},
        {"prompt": "close on @Element1 walking", "duration": "4"},
        {"prompt": "the beam sweeps", "duration": "3"},
    ], elements=[{"frontal_image_url": URL}])
    inputs = GenerationInputs(start_image=PICTURE, end_image=PICTURE,
                              elements=(ElementImages(PICTURE),))
    shots = plan_shots(params, inputs)
    assert [shot.frames for shot in shots] == [72, 96, 72]
    assert [shot.guides for shot in shots] == [
        (Guide("start", 0),),
        (Guide("element:1", 0, ELEMENT_GUIDE_STRENGTH),),
        (Guide("end", -1),),
    ]
    assert shots[1].prompt == ("close on the first subject walking "
                               "Scene: a lighthouse at night")


def test_voices_and_elements_become_words() -> None:
    voices = (VoiceSample("v1", "Ada", 110.0, b""), VoiceSample("v2", "", 240.0, b""))
    inputs = GenerationInputs(voices=voices)
    text = "<<<voice_1>>> says hello to <<<voice_2>>> and @Element2"
    assert rewrite_prompt(text, "", inputs) == (
        "a deep, low-pitched voice (Ada) says hello to a high-pitched voice "
        "and the second subject")
