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
    MAX_ELEMENT_GUIDES,
    Guide,
    generation_frames,
    guidance_scale,
    plan_shots,
    rewrite_prompt,
)
from reelserve.engines.ltx2.recipe import (
    Geometry,
    crop_box,
    keyframe_latent_index,
    latent_frames,
    plan_stages,
    render_size,
)

T2V, I2V = MODELS["kling-3-standard-text2video"], MODELS["kling-3-standard-image2video"]
PICTURE = Image.new("RGB", (8, 8))
URL = "https://example.com/a.png"


def _params(model: Any = T2V, **body: Any) -> JobParams:
    return parse_submit(model, {"prompt": "a lighthouse at night", **body}, random.Random(1))


@pytest.mark.parametrize(("output", "render"), [
    ((1920, 1080), (1920, 1088)), ((1080, 1920), (1088, 1920)), ((1080, 1080), (1088, 1088)),
])
def test_true_1080p_renders_at_the_next_multiple_of_64_and_crops_to_the_output(
        output: tuple[int, int], render: tuple[int, int]) -> None:
    assert render_size(output, 0, two_stage=True) == render
    left, top, width, height = crop_box(render, output)
    assert (width, height) == output  # a crop, never a resize
    assert (left, top) == ((render[0] - output[0]) // 2, (render[1] - output[1]) // 2)


def test_two_stage_is_base_at_half_size_then_upsample_and_refine_at_full_size() -> None:
    stages = plan_stages((1920, 1088), 121, True, base_steps=8, refine_steps=3)
    assert [(s.name, s.width, s.height, s.latent_frames, s.steps) for s in stages] == [
        ("base", 960, 544, 16, 8), ("upsample", 1920, 1088, 16, 0),
        ("refine", 1920, 1088, 16, 3)]
    [single] = plan_stages(render_size((1920, 1080), 0, False), 121, False, 8, 3)
    assert (single.name, single.width, single.height) == ("single", 1920, 1088)


def test_a_smaller_render_keeps_the_output_aspect_in_multiples_of_64() -> None:
    assert render_size((1920, 1080), 128, two_stage=True) == (128, 128)
    assert render_size((1920, 1080), 960, two_stage=False) == (960, 544)


@pytest.mark.parametrize(("pixel", "latent"), [(0, 0), (1, 1), (8, 1), (9, 2), (119, 15),
                                               (120, 15), (71, 9)])
def test_a_pixel_frame_maps_to_the_latent_frame_that_holds_it(pixel: int, latent: int) -> None:
    assert keyframe_latent_index(pixel) == latent


def test_the_last_output_frame_sits_in_the_last_latent_frame() -> None:
    for seconds in (3, 5, 10):
        frames = seconds * 24
        generated = generation_frames(frames)
        assert keyframe_latent_index(frames - 1) == latent_frames(generated) - 1
    assert keyframe_latent_index(5, Geometry(temporal=2)) == 3


@pytest.mark.parametrize(("frames", "generated"), [(72, 73), (120, 121), (360, 361), (74, 81)])
def test_generated_frames_are_the_smallest_8k_plus_1_that_cover_the_clip(
        frames: int, generated: int) -> None:
    assert generation_frames(frames) == generated


def test_cfg_scale_half_is_the_model_default_and_zero_turns_guidance_off() -> None:
    assert guidance_scale(0.5, 3.0) == pytest.approx(3.0)
    assert guidance_scale(0.0, 3.0) == pytest.approx(1.0)
    assert guidance_scale(1.0, 3.0) == pytest.approx(5.0)
    assert guidance_scale(0.9, 1.0) == 1.0  # a distilled model samples without guidance


def test_start_and_end_images_pin_the_first_and_last_frame() -> None:
    params = _params(I2V, start_image_url=URL, end_image_url=URL, duration="4")
    [shot] = plan_shots(params, GenerationInputs(start_image=PICTURE, end_image=PICTURE))
    assert (shot.frames, shot.generate_frames) == (96, 97)
    assert shot.guides == (Guide("start", 0), Guide("end", 95))  # the last output frame


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
        (Guide("end", 71),),
    ]
    assert shots[1].prompt == ("close on the first subject walking "
                               "Scene: a lighthouse at night")


def _element(references: int, frontal: bool = True) -> ElementImages:
    return ElementImages(PICTURE if frontal else None, (PICTURE,) * references)


def test_every_named_element_image_guides_the_shot_up_to_the_cap() -> None:
    params = _params(prompt="@Element2 hands @Element1 a lantern", duration="5",
                     elements=[{"frontal_image_url": URL}] * 3)
    inputs = GenerationInputs(elements=(_element(2), _element(1), _element(3)))
    [shot] = plan_shots(params, inputs)
    weak = ELEMENT_GUIDE_STRENGTH
    # Frontals in the order named, then first references in turn; element 3 is not named.
    assert shot.guides == (Guide("element:2", 0, weak), Guide("element:1", 30, weak),
                           Guide("element:2:1", 60, weak), Guide("element:1:1", 89, weak))
    assert len(shot.guides) == MAX_ELEMENT_GUIDES


def test_element_images_sit_between_the_start_and_end_images() -> None:
    params = _params(I2V, prompt="@Element1 waves", start_image_url=URL, end_image_url=URL,
                     duration="5", elements=[{"frontal_image_url": URL}])
    inputs = GenerationInputs(start_image=PICTURE, end_image=PICTURE,
                              elements=(_element(1),))
    [shot] = plan_shots(params, inputs)
    weak = ELEMENT_GUIDE_STRENGTH
    assert shot.guides == (Guide("start", 0), Guide("element:1", 40, weak),
                           Guide("element:1:1", 79, weak), Guide("end", 119))


def test_an_element_with_only_reference_images_never_takes_frame_0() -> None:
    params = _params(prompt="@Element1 runs", duration="3")
    [shot] = plan_shots(params, GenerationInputs(elements=(_element(2, frontal=False),)))
    weak = ELEMENT_GUIDE_STRENGTH
    assert shot.guides == (Guide("element:1:1", 24, weak), Guide("element:1:2", 47, weak))


def test_voices_and_elements_become_words() -> None:
    voices = (VoiceSample("v1", "Ada", 110.0, b""), VoiceSample("v2", "", 240.0, b""))
    inputs = GenerationInputs(voices=voices)
    text = "<<<voice_1>>> says hello to <<<voice_2>>> and @Element2"
    assert rewrite_prompt(text, "", inputs) == (
        "a deep, low-pitched voice (Ada) says hello to a high-pitched voice "
        "and the second subject")
