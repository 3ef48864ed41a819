"""``reelserve models plan``: the run plan of one clip, printed or as JSON.

Exit codes: 0 when the plan fits, 1 when it cannot (the message names the GiB
needed), 2 for a bad option.
"""

from __future__ import annotations

import json
from typing import Any

from reelserve.engines.ltx2.placement import PlanDoesNotFit
from reelserve.engines.ltx2.run_plan import OUTPUT_SIZES, RunPlan, build_run_plan
from reelserve.errors import EngineUnavailable

NO_GPU_GIB = 80.0  # what the plan assumes without a local GPU and without --gpu-memory


def local_free_gib() -> float | None:
    """Free memory of the local CUDA GPU, or None without torch or a GPU."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    free, _total = torch.cuda.mem_get_info()
    return float(free) / 1024**3


# Why there is no configs/ltx-2.5.json: its sizes could not be taken from a source.
LTX_2_5_NOT_PACKAGED = (
    "LTX-2.5's component configs are not packaged, so it cannot be planned: diffusers' "
    "converter (scripts/convert_ltx2_to_diffusers.py, commit 58eb52c) has its transformer, "
    "VAE, audio VAE and vocoder, but derives the connectors from a Gemma 4 text encoder that "
    "is not one fixed checkpoint and has no LTX-2.5 latent upsampler config, and no other "
    "public source at hand has them; parameter counts are never typed in. --version 2.3 "
    "is the nearest plan: 2.5's transformer differs from 2.3's only by the video FFN's bias "
    "and a keyframe position embedding (the converter's own note)")


def run_plan_command(*, variant: str, gpu_memory: float | None, duration: int, aspect: str,
                     profile: str, version: str, as_json: bool) -> int:
    problem = _check_options(variant, duration, aspect, profile, version)
    if problem:
        print(f"error: {problem}")
        return 2
    note = ""
    if gpu_memory is None:
        gpu_memory = local_free_gib()
        if gpu_memory is None:
            gpu_memory = NO_GPU_GIB
            note = f"no local GPU: planned for {NO_GPU_GIB:.0f} GiB (pass --gpu-memory)"
    try:
        plan = build_run_plan(version=version, distilled=variant == "distilled",
                              gpu_gib=gpu_memory, duration=duration, aspect=aspect,
                              two_stage=profile == "two-stage")
    except PlanDoesNotFit as error:
        print(f"error: {error.message}")
        return 1
    except EngineUnavailable as error:
        print(f"error: {error.message}")
        return 2
    if as_json:
        print(json.dumps(plan.to_json()))
    else:
        print(describe(plan, gpu_memory, note))
    return 0


def describe(plan: RunPlan, gpu_gib: float, note: str = "") -> str:
    data: dict[str, Any] = plan.to_json()
    out = data["output"]
    lines = [f"{plan.variant} on {gpu_gib:.0f} GiB" + (f" ({note})" if note else ""),
             f"output  {out['width']}x{out['height']}, {out['frames']} frames at {out['fps']} fps",
             "stages"]
    lines += [f"  {s['name']:<8} {s['width']}x{s['height']}, {s['latent_frames']} latent "
              f"frames, {s['steps']} steps" for s in data["stages"]]
    lines.append(f"keyframes  pixel frames {data['keyframes']} (start and end images), "
                 f"latent frames {plan.keyframe_latents}")
    lines.append(f"dtype  {data['dtype']}")
    lines.append("components")
    for name, count in data["params"].items():
        lines.append(f"  {name:<17} {count / 1e9:6.2f}B params  {data['placement'][name]:<13} "
                     f"{data['storage'][name]}")
    lines.append(f"peak GPU memory  {data['peak_gpu_gib']} GiB (estimate)")
    lines.append(f"compute  {data['tflops']} TFLOPs per clip (transformer and upsampler, "
                 "torch FLOP counter on the meta device)")
    return "\n".join(lines)


def _check_options(variant: str, duration: int, aspect: str, profile: str,
                   version: str) -> str:
    if variant not in ("distilled", "full"):
        return f"--variant must be distilled or full, not {variant!r}"
    if aspect not in OUTPUT_SIZES:
        return f"--aspect must be one of {', '.join(OUTPUT_SIZES)}, not {aspect!r}"
    if not 1 <= duration <= 60:
        return f"--duration must be 1 to 60 seconds, not {duration}"
    if profile not in ("two-stage", "fast"):
        return f"--profile must be two-stage or fast, not {profile!r}"
    if version == "2.5":
        return LTX_2_5_NOT_PACKAGED
    if version not in ("2.0", "2.3"):
        return f"--version must be 2.0 or 2.3 (the configs kept in the package), not {version!r}"
    return ""
