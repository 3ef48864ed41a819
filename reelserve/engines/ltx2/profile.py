"""How to sample a model directory, read from its own files rather than its name.

``model_index.json``, ``transformer/config.json`` and ``scheduler/scheduler_config.json``
say which LTX-2 generation a directory holds, whether it is the distilled
checkpoint, how many transformer blocks it has and whether a latent upsampler
came with it. The per-generation defaults (STG block, cross timestep, steps,
guidance) are Lightricks' own ``ltx_pipelines.utils.constants`` (LTX_2_PARAMS,
LTX_2_3_PARAMS, LTX_2_4_PARAMS; repository Lightricks/LTX-2, commit 400fd31).

Pure Python: no torch, so ``reelserve models plan`` and the tests read it freely.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reelserve.errors import EngineUnavailable

OVERRIDES_FILE = "reelserve-ltx2.json"
# ltx_pipelines.utils.constants.DISTILLED_SIGMA_VALUES / STAGE_2_DISTILLED_SIGMA_VALUES,
# without the trailing 0.0 the diffusers scheduler appends itself.
DISTILLED_SIGMAS = (1.0, 0.99375, 0.9875, 0.98125, 0.975, 0.909375, 0.725, 0.421875)
REFINE_SIGMAS = (0.909375, 0.725, 0.421875)


@dataclass(frozen=True)
class Generation:
    """What differs between LTX-2 generations (one row of docs/engines.md's table)."""

    version: str
    stg_block: int  # zero-based transformer block STG perturbs
    cross_timestep: bool  # cross-modal attention uses the other modality's sigma
    full_steps: int  # guided steps of the full (non-distilled) model
    image_crf: int  # what Lightricks re-encodes keyframes at; reelserve passes 0
    distilled_lora: str  # the stage-2 LoRA of the full model, in the official repository


GENERATIONS = {
    "2.0": Generation("2.0", 29, False, 40, 33, "ltx-2-19b-distilled-lora-384.safetensors"),
    "2.3": Generation("2.3", 28, True, 30, 33, "ltx-2.3-22b-distilled-lora-384-1.1.safetensors"),
    "2.5": Generation("2.5", 28, True, 30, 18,
                      "loras/ltx-2.5-22b-distilled-lora-450-bf16.safetensors"),
}

# Lightricks' published guidance (PipelineParams.video_/audio_guider_params): what
# cfg_scale 0.5 maps to. The STG block is filled in per generation.
GUIDED: dict[str, Any] = {
    "guidance_scale": 3.0, "stg_scale": 1.0, "modality_scale": 3.0, "guidance_rescale": 0.7,
    "audio_guidance_scale": 7.0, "audio_stg_scale": 1.0, "audio_modality_scale": 3.0,
    "audio_guidance_rescale": 0.7,
}
# The distilled checkpoint (and any refine stage) samples with one pass per step.
UNGUIDED: dict[str, Any] = {
    "guidance_scale": 1.0, "stg_scale": 0.0, "modality_scale": 1.0, "guidance_rescale": 0.0,
    "audio_guidance_scale": 1.0, "audio_stg_scale": 0.0, "audio_modality_scale": 1.0,
    "audio_guidance_rescale": 0.0,
}


@dataclass(frozen=True)
class ModelProfile:
    """Everything the engine and the plan need to know about one model directory."""

    generation: Generation
    distilled: bool
    num_layers: int
    has_upsampler: bool
    base: dict[str, Any]  # keyword arguments of the base stage's pipeline call
    refine: dict[str, Any]  # ... and of the refine stage
    max_sequence_length: int = 1024
    overridden: tuple[str, ...] = field(default=())  # keys the overrides file set
    refine_lora: str = ""  # the distilled LoRA the full model refines with, when present

    @property
    def variant(self) -> str:
        return f"ltx-{self.generation.version}-{'distilled' if self.distilled else 'full'}"

    @property
    def base_steps(self) -> int:
        return _steps(self.base)

    @property
    def refine_steps(self) -> int:
        return _steps(self.refine)

    @property
    def passes_per_step(self) -> int:
        """Transformer passes per base step: CFG doubles the batch, STG and modality add one."""
        guided = float(self.base.get("guidance_scale", 1.0)) > 1.0
        stg = float(self.base.get("stg_scale", 0.0)) > 0.0
        modality = float(self.base.get("modality_scale", 1.0)) != 1.0
        return (2 if guided else 1) + int(stg) + int(modality)


def detect_generation(transformer: dict[str, Any], index: dict[str, Any]) -> Generation:
    """2.5 has a duration head, a bias-free video FFN or keyframe position embeddings;
    2.3 has gated attention; anything else is 2.0."""
    if (_has_component(index, "duration_head") or transformer.get("ff_bias") is False
            or transformer.get("use_keyframes_abs_pos_embedding")):
        return GENERATIONS["2.5"]
    if transformer.get("gated_attn") or transformer.get("perturbed_attn"):
        return GENERATIONS["2.3"]
    return GENERATIONS["2.0"]


def profile_from_configs(index: dict[str, Any], transformer: dict[str, Any],
                         scheduler: dict[str, Any], overrides: dict[str, Any] | None = None,
                         steps: int = 0, has_upsampler: bool = True,
                         has_lora: bool = False) -> ModelProfile:
    """The profile of a model whose configs are given (``steps``: REELSERVE_LTX2_STEPS).

    The refine stage samples the stage-2 distilled sigmas in one pass per step: the
    distilled model as it is, the full model with Lightricks' distilled LoRA
    (``has_lora``). A full model without that LoRA refines with its own guidance.
    """
    generation = detect_generation(transformer, index)
    # diffusers' converter writes the distilled checkpoint's scheduler without
    # dynamic shifting, so its fixed sigmas are used as they are.
    distilled = scheduler.get("use_dynamic_shifting") is False
    num_layers = int(transformer.get("num_layers", 48))
    shared = {"use_cross_timestep": generation.cross_timestep,
              "spatio_temporal_guidance_blocks": [generation.stg_block]}
    if distilled:
        base: dict[str, Any] = {**UNGUIDED, **shared, "sigmas": list(DISTILLED_SIGMAS)}
    else:
        base = {**GUIDED, **shared, "num_inference_steps": generation.full_steps}
    one_pass = distilled or has_lora
    refine: dict[str, Any] = {**(UNGUIDED if one_pass else GUIDED), **shared,
                              "sigmas": list(REFINE_SIGMAS)}
    extra = dict(overrides or {})
    max_length = int(extra.pop("max_sequence_length", 1024))
    base.update({k: v for k, v in extra.items() if not k.startswith("refine_")})
    refine.update({k[len("refine_"):]: v for k, v in extra.items() if k.startswith("refine_")})
    if steps:
        base = with_steps(base, steps, distilled)
    _check_stg_block(base, num_layers)
    _check_stg_block(refine, num_layers)
    lora = generation.distilled_lora if has_lora and not distilled else ""
    return ModelProfile(generation, distilled, num_layers, has_upsampler,
                        base, refine, max_length, tuple(sorted(extra)), lora)


def with_steps(sampling: dict[str, Any], steps: int, distilled: bool) -> dict[str, Any]:
    """``steps`` base steps: a guided schedule takes any count; a distilled one keeps a
    subset of its own sigmas (first and last kept), and refuses more than it has."""
    changed = dict(sampling)
    sigmas = changed.get("sigmas")
    if not distilled or not sigmas:
        changed.pop("sigmas", None)
        changed["num_inference_steps"] = steps
        return changed
    if not 1 <= steps <= len(sigmas):
        raise EngineUnavailable(
            f"REELSERVE_LTX2_STEPS={steps}: the distilled model was trained on "
            f"{len(sigmas)} fixed sigmas; use 1 to {len(sigmas)} (a subset of them), or 0")
    if steps == 1:
        picked = [0]
    else:
        picked = sorted({round(i * (len(sigmas) - 1) / (steps - 1)) for i in range(steps)})
    changed["sigmas"] = [sigmas[i] for i in picked]
    changed.pop("num_inference_steps", None)
    return changed


def read_model_profile(path: Path, steps: int = 0) -> ModelProfile:
    """The profile of the model directory at ``path``; ``EngineUnavailable`` names a bad file."""
    index = _read_json(path / "model_index.json")
    transformer = _read_json(path / "transformer" / "config.json")
    scheduler_file = path / "scheduler" / "scheduler_config.json"
    scheduler = _read_json(scheduler_file) if scheduler_file.is_file() else {}
    overrides_file = path / OVERRIDES_FILE
    overrides: dict[str, Any] = {}
    if overrides_file.is_file():
        data = _read_json(overrides_file)
        sampling = data.get("sampling", {})
        if not isinstance(sampling, dict):
            raise EngineUnavailable(f"{overrides_file}: \"sampling\" must be an object")
        overrides = sampling
    has_upsampler = (path / "latent_upsampler" / "config.json").is_file()
    generation = detect_generation(transformer, index)
    has_lora = (path / generation.distilled_lora).is_file()
    return profile_from_configs(index, transformer, scheduler, overrides, steps, has_upsampler,
                                has_lora)


def _has_component(index: dict[str, Any], name: str) -> bool:
    """model_index.json lists optional components that were not saved as [null, null]."""
    entry = index.get(name)
    return isinstance(entry, list) and bool(entry) and entry[0] is not None


def _check_stg_block(sampling: dict[str, Any], num_layers: int) -> None:
    if float(sampling.get("stg_scale", 0.0)) <= 0 and float(
            sampling.get("audio_stg_scale", 0.0)) <= 0:
        return
    for block in sampling.get("spatio_temporal_guidance_blocks") or []:
        if not 0 <= int(block) < num_layers:
            raise EngineUnavailable(
                f"the STG block {block} does not exist: the transformer has {num_layers} "
                "blocks (transformer/config.json num_layers)")


def _steps(sampling: dict[str, Any]) -> int:
    sigmas = sampling.get("sigmas")
    return len(sigmas) if sigmas else int(sampling.get("num_inference_steps", 0))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as error:
        raise EngineUnavailable(f"{path} is missing: not a diffusers LTX-2 directory; "
                                "download one with `reelserve models pull ltx-2`") from error
    except (OSError, ValueError) as error:
        raise EngineUnavailable(f"{path} is not valid JSON: {error}") from error
    if not isinstance(data, dict):
        raise EngineUnavailable(f"{path} is not a JSON object")
    return data
