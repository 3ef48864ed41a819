"""How the preview engine reads prompts and splits shots (no rendering, fast)."""

from __future__ import annotations

import dataclasses

import pytest

from reelserve.catalog import JobParams, Shot
from reelserve.engines.preview.prompt import SceneReader, removed_by, spoken_lines
from reelserve.engines.preview.shots import plan_shots, split_sentences

DEFAULT_NEGATIVE = "blur, distort, and low quality"


def read(prompt: str, seed: int = 1, cfg: float = 1.0, negative: str = DEFAULT_NEGATIVE):  # type: ignore[no-untyped-def]
    return SceneReader(negative, cfg).read(prompt, prompt, seed)


@pytest.mark.parametrize(
    ("prompt", "palette"),
    [("golden hour over the hills", "golden_hour"), ("a street at night", "night"),
     ("neon signs", "neon"), ("an overcast beach", "overcast"), ("sunset on the lake", "sunset"),
     ("城市的夜晚", "night")],
)
def test_light_words_choose_the_palette(prompt: str, palette: str) -> None:
    assert read(prompt).palette == palette


def test_place_atmosphere_and_subject_words_are_all_picked_up() -> None:
    spec = read("A knight in a foggy pine forest by the sea, rain and fireflies, birds overhead")
    assert {"forest", "sea"} <= set(spec.environments)
    assert {"fog", "rain", "fireflies"} <= set(spec.atmosphere)
    assert {"figure", "birds"} <= set(spec.subjects)
    assert {"water", "forest", "rain"} <= set(spec.ambience)


@pytest.mark.parametrize(
    ("prompt", "kind", "direction"),
    [("slow pan left across the city", "pan", -1),
     ("the camera pulls back to reveal", "pull_back", None),
     ("orbit around the temple", "orbit", None), ("crane up over the valley", "crane", 1),
     ("static shot of a lake", "static", None), ("handheld, running", "handheld", None),
     ("tilt down to the street", "tilt", -1), ("a mountain", "push_in", None)],
)
def test_camera_words_choose_the_move(prompt: str, kind: str, direction: int | None) -> None:
    move = read(prompt).camera
    assert move.kind == kind
    if direction is not None:
        assert move.direction == direction


def test_unknown_words_fall_back_to_a_seed_chosen_scene() -> None:
    scenes = {read("qwerty zxcvb", seed=seed).environments for seed in range(12)}
    assert len(scenes) >= 3  # the seed decides
    assert read("qwerty", seed=5) == read("qwerty", seed=5)  # and decides the same way twice


def test_negative_prompt_removes_what_it_names_and_the_default_removes_nothing() -> None:
    prompt = "a misty forest in the rain with snow and dust, a woman, birds"
    full = read(prompt)
    assert removed_by(DEFAULT_NEGATIVE) == set()
    assert "fog" not in read(prompt, negative="fog").atmosphere
    no_particles = read(prompt, negative="particles, people")
    assert not {"rain", "snow", "dust"} & set(no_particles.atmosphere)
    assert "fog" in no_particles.atmosphere and "figure" not in no_particles.subjects
    assert {"fog", "rain", "snow", "dust"} <= set(full.atmosphere)


def test_no_and_without_in_the_prompt_remove_things_too() -> None:
    spec = read("a forest at dawn, no fog, without birds, fog everywhere")
    assert "fog" not in spec.atmosphere and "birds" not in spec.subjects


def test_cfg_scale_sets_how_far_words_override_the_seed() -> None:
    prompt = "a desert at sunset, static"
    strict = [read(prompt, seed=s, cfg=1.0) for s in range(20)]
    assert all(s.palette == "sunset" and s.environments == ("desert",) for s in strict)
    assert all(s.camera.kind == "static" for s in strict)
    loose = [read(prompt, seed=s, cfg=0.0) for s in range(20)]
    assert any(s.palette != "sunset" or s.environments != ("desert",) for s in loose)


def test_quoted_text_becomes_spoken_lines_with_language_and_voice() -> None:
    lines = spoken_lines('<<<voice_2>>> says "Hello there." then “你好世界” and "Bye"')
    assert [(line.text, line.language, line.voice) for line in lines] == [
        ("Hello there.", "en", 2), ("你好世界", "cmn", 2), ("Bye", "en", 2)]
    assert spoken_lines("no quotes here") == ()


def test_quoted_words_do_not_paint_the_scene() -> None:
    spec = read('A desert at noon. He says "the sea is calling"')
    assert "sea" not in spec.environments


def test_element_tags_reference_elements() -> None:
    assert read("@Element2 meets @element1 on a beach").elements == (0, 1)


def _params(**changes: object) -> JobParams:
    base = JobParams(slug="kling-3-standard-text2video", prompt="x", negative_prompt="",
                     duration=9, aspect_ratio="16:9", cfg_scale=0.5, generate_audio=True,
                     shot_type="customize", seed=1)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_multi_prompt_segments_become_shots_starting_on_exact_frames() -> None:
    shots = plan_shots(_params(duration=12, shots=(Shot("a", 3), Shot("b", 4), Shot("c", 5))))
    assert [(s.prompt, s.start_frame, s.frame_count) for s in shots] == [
        ("a", 0, 72), ("b", 72, 96), ("c", 168, 120)]


def test_intelligent_shot_type_cuts_sentences_into_at_most_three_shots() -> None:
    prompt = "One. Two! Three? Four. Five."
    shots = plan_shots(_params(prompt=prompt, shot_type="intelligent", duration=10))
    assert len(shots) == 3
    assert sum(s.frame_count for s in shots) == 240
    assert shots[0].prompt == "One. Two!" and shots[2].prompt == "Five."
    single = plan_shots(_params(prompt="Just one sentence", shot_type="intelligent"))
    assert len(single) == 1 and single[0].frame_count == 9 * 24


def test_sentences_keep_quoted_speech_whole() -> None:
    text = 'She turns. She says "Wait. Stop!" and runs. 他笑了。然后离开。'
    assert split_sentences(text) == [
        "She turns.", 'She says "Wait. Stop!" and runs.', "他笑了。", "然后离开。"]
