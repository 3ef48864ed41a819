"""The plan of one clip: stages, keyframes, sizes, placement, peak memory and FLOPs.

``reelserve models plan`` prints it and the engine runs it, so both call
``build_run_plan``. Parameter counts and FLOPs come from ``sizing`` (meta device).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reelserve.engines.ltx2.placement import (
    Placement,
    Workload,
    choose_placement,
    forced_placement,
)
from reelserve.engines.ltx2.recipe import (
    Stage,
    generation_frames,
    keyframe_latent_index,
    plan_stages,
    render_size,
)

FPS = 24
OUTPUT_SIZES = {"16:9": (1920, 1080), "9:16": (1080, 1920), "1:1": (1080, 1080)}
DTYPE = "bfloat16"


@dataclass(frozen=True)
class RunPlan:
    """Everything ``reelserve models plan --json`` prints."""

    output: tuple[int, int]
    frames: int
    stages: list[Stage]
    keyframes: list[int]  # pixel frames of the start and end images
    keyframe_latents: list[int]  # ... and the latent frames that hold them
    params: dict[str, int]
    placement: Placement
    tflops: float
    variant: str

    def to_json(self) -> dict[str, Any]:
        width, height = self.output
        return {
            "output": {"width": width, "height": height, "frames": self.frames, "fps": FPS},
            "stages": [{"name": s.name, "width": s.width, "height": s.height,
                        "latent_frames": s.latent_frames, "steps": s.steps}
                       for s in self.stages],
            "keyframes": self.keyframes,
            "params": self.params,
            "dtype": DTYPE,
            "placement": self.placement.where,
            "storage": self.placement.storage,
            "peak_gpu_gib": self.placement.peak_gib,
            "tflops": round(self.tflops, 1),
        }


def build_run_plan(*, version: str, distilled: bool, gpu_gib: float, duration: int,
                   aspect: str, two_stage: bool = True, base_steps: int | None = None,
                   refine_steps: int = 3, passes_per_step: int | None = None,
                   offload: str = "auto", weights: str = "auto") -> RunPlan:
    """The plan for a full-size ``version`` model; see ``docs/engines.md``."""
    from reelserve.engines.ltx2.sizing import (
        AUDIO_LATENTS_PER_SECOND,
        model_sizes,
        transformer_pass_flops,
        upsampler_flops,
    )

    output = OUTPUT_SIZES[aspect]
    frames = duration * FPS
    generated = generation_frames(frames)
    steps = base_steps if base_steps is not None else (8 if distilled else 40)
    passes = passes_per_step if passes_per_step is not None else (1 if distilled else 4)
    render = render_size(output, 0, two_stage)
    stages = plan_stages(render, generated, two_stage, steps, refine_steps)
    sizes = model_sizes(version)
    params = dict(sizes.params)
    weights_bytes = dict(sizes.bf16_bytes)
    if not two_stage:
        params.pop("latent_upsampler", None)
        weights_bytes.pop("latent_upsampler", None)
    audio_tokens = round(generated / FPS * AUDIO_LATENTS_PER_SECOND)
    flops = 0
    largest = 0
    for index, stage in enumerate(stages):
        latent_h, latent_w = stage.height // 32, stage.width // 32
        if stage.name == "upsample":
            base = stages[index - 1]
            flops += upsampler_flops(version, base.latent_frames, base.height // 32,
                                     base.width // 32)
            continue
        per_pass = transformer_pass_flops(version, stage.latent_frames, latent_h, latent_w,
                                          audio_tokens)
        stage_passes = passes if stage.name in ("base", "single") else 1
        flops += per_pass * stage_passes * stage.steps
        largest = max(largest, stage.latent_frames * latent_h * latent_w)
    work = Workload(largest, 2 if passes > 1 else 1)
    if offload == "auto":
        placement = choose_placement(weights_bytes, gpu_gib, work, weights)
    else:
        placement = forced_placement(weights_bytes, offload, work,
                                     "fp8" if weights == "fp8" else "bf16")
    keyframes = [0, frames - 1]
    return RunPlan(output, frames, stages, keyframes,
                   [keyframe_latent_index(k) for k in keyframes], params, placement,
                   flops / 1e12, f"ltx-{version}-{'distilled' if distilled else 'full'}")
