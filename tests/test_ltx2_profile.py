"""The sampling profile is read from a model's own files, for LTX-2.0, 2.3 and 2.5."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reelserve.engines.ltx2.profile import (
    DISTILLED_SIGMAS,
    REFINE_SIGMAS,
    profile_from_configs,
    read_model_profile,
)
from reelserve.errors import EngineUnavailable

FULL_SCHEDULER = {"use_dynamic_shifting": True, "shift_terminal": 0.1}
DISTILLED_SCHEDULER = {"use_dynamic_shifting": False}


def _transformer(version: str) -> dict[str, Any]:
    """The full-size transformer config the package keeps, for 2.0 and 2.3; 2.5 adds its
    two deltas (diffusers' converter: ff_bias False, keyframe position embeddings)."""
    from importlib import resources

    base = "2.0" if version == "2.0" else "2.3"
    text = resources.files("reelserve.engines.ltx2").joinpath(
        "configs", f"ltx-{base}.json").read_text()
    config: dict[str, Any] = json.loads(text)["components"]["transformer"]
    if version == "2.5":
        config = {**config, "ff_bias": False, "use_keyframes_abs_pos_embedding": True}
    return config


@pytest.mark.parametrize(("version", "stg", "cross", "steps"), [
    ("2.0", 29, False, 40), ("2.3", 28, True, 30), ("2.5", 28, True, 30),
])
def test_generation_comes_from_the_transformer_config_not_the_folder_name(
        version: str, stg: int, cross: bool, steps: int) -> None:
    profile = profile_from_configs({}, _transformer(version), FULL_SCHEDULER)
    assert profile.generation.version == version
    assert profile.base["spatio_temporal_guidance_blocks"] == [stg]
    assert profile.base["use_cross_timestep"] is cross
    assert profile.base_steps == steps and not profile.distilled
    assert profile.base["guidance_scale"] == 3.0 and profile.base["audio_guidance_scale"] == 7.0
    assert profile.passes_per_step == 4


def test_an_optional_component_saved_as_null_does_not_make_a_model_2_5() -> None:
    index = {"duration_head": [None, None], "transformer": ["diffusers", "X"]}
    assert profile_from_configs(index, _transformer("2.0"), FULL_SCHEDULER).generation.version \
        == "2.0"
    with_head = {"duration_head": ["diffusers", "LTX2DurationHead"]}
    assert profile_from_configs(with_head, _transformer("2.0"),
                                FULL_SCHEDULER).generation.version == "2.5"


def test_a_scheduler_without_dynamic_shifting_is_the_distilled_checkpoint() -> None:
    profile = profile_from_configs({}, _transformer("2.3"), DISTILLED_SCHEDULER)
    assert profile.distilled and profile.variant == "ltx-2.3-distilled"
    assert profile.base["sigmas"] == list(DISTILLED_SIGMAS)
    assert profile.base["guidance_scale"] == 1.0 and profile.passes_per_step == 1
    assert profile.refine["sigmas"] == list(REFINE_SIGMAS) and profile.refine_steps == 3


def test_the_full_model_refines_in_one_pass_only_with_its_distilled_lora() -> None:
    without = profile_from_configs({}, _transformer("2.0"), FULL_SCHEDULER)
    assert without.refine["guidance_scale"] == 3.0 and not without.refine_lora
    lora = profile_from_configs({}, _transformer("2.0"), FULL_SCHEDULER, has_lora=True)
    assert lora.refine["guidance_scale"] == 1.0
    assert lora.refine_lora == "ltx-2-19b-distilled-lora-384.safetensors"


@pytest.mark.parametrize(("steps", "sigmas"), [
    (8, list(DISTILLED_SIGMAS)),
    (4, [1.0, 0.9875, 0.909375, 0.421875]),
    (2, [1.0, 0.421875]),
    (1, [1.0]),
])
def test_ltx2_steps_keeps_a_distilled_schedule_a_subset_of_its_own_sigmas(
        steps: int, sigmas: list[float]) -> None:
    profile = profile_from_configs({}, _transformer("2.0"), DISTILLED_SCHEDULER, steps=steps)
    assert profile.base["sigmas"] == sigmas
    assert set(profile.base["sigmas"]) <= set(DISTILLED_SIGMAS)
    assert "num_inference_steps" not in profile.base


def test_ltx2_steps_beyond_the_distilled_schedule_is_refused_with_the_limit() -> None:
    with pytest.raises(EngineUnavailable, match=r"REELSERVE_LTX2_STEPS=20: .* 8 fixed sigmas"):
        profile_from_configs({}, _transformer("2.0"), DISTILLED_SCHEDULER, steps=20)
    full = profile_from_configs({}, _transformer("2.0"), FULL_SCHEDULER, steps=20)
    assert full.base_steps == 20 and "sigmas" not in full.base


def test_an_stg_block_the_transformer_lacks_is_refused() -> None:
    small = {**_transformer("2.0"), "num_layers": 2}
    with pytest.raises(EngineUnavailable, match=r"STG block 29 does not exist.* 2 blocks"):
        profile_from_configs({}, small, FULL_SCHEDULER)
    assert profile_from_configs({}, small, DISTILLED_SCHEDULER).distilled  # no STG pass


def test_read_model_profile_reads_the_directory_and_its_overrides(tmp_path: Path) -> None:
    for name, data in {"model_index.json": {"_class_name": "LTX2Pipeline"},
                       "transformer/config.json": _transformer("2.3"),
                       "scheduler/scheduler_config.json": FULL_SCHEDULER,
                       "latent_upsampler/config.json": {},
                       "reelserve-ltx2.json": {"sampling": {"num_inference_steps": 2,
                                                            "max_sequence_length": 16}}}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(json.dumps(data))
    renamed = tmp_path.rename(tmp_path.parent / "ltx-2-distilled-but-not-really")
    profile = read_model_profile(renamed)
    assert profile.variant == "ltx-2.3-full" and profile.has_upsampler
    assert profile.base_steps == 2 and profile.max_sequence_length == 16


def test_a_directory_without_a_transformer_config_names_the_missing_file(
        tmp_path: Path) -> None:
    (tmp_path / "model_index.json").write_text("{}")
    with pytest.raises(EngineUnavailable, match=r"transformer/config\.json is missing"):
        read_model_profile(tmp_path)
