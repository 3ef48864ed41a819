"""Load the LTX-2 pipeline once: device, precision, offload and VAE tiling.

"auto" settings are chosen from the device and its free memory when the engine
starts; each can be forced (``REELSERVE_LTX2_DEVICE``, ``_DTYPE``, ``_OFFLOAD``,
``_VAE_TILING``). The thresholds follow the model's size: LTX-2's transformer
(19B) and Gemma 3 12B text encoder take about 65 GB in bf16 together.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reelserve.errors import EngineUnavailable
from reelserve.model_store import INSTALL_HINT
from reelserve.settings import Settings

GIB = 1024**3
WHOLE_ON_GPU_GIB = 90.0  # everything resident, VAE decode untiled
MODEL_OFFLOAD_GIB = 40.0  # one component at a time on the GPU
OFFLOADS = ("none", "model", "sequential")


@dataclass(frozen=True)
class Runtime:
    """How the pipeline runs; shown in the worker log and in errors."""

    device: str
    dtype: str
    offload: str
    vae_tiling: bool
    free_gib: float | None

    def describe(self) -> str:
        free = "" if self.free_gib is None else f", {self.free_gib:.0f} GiB free"
        tiling = "on" if self.vae_tiling else "off"
        return (f"{self.device} {self.dtype}, offload {self.offload}, "
                f"VAE tiling {tiling}{free}")


def import_torch() -> Any:
    """torch and diffusers, or ``EngineUnavailable`` naming the install command."""
    try:
        import diffusers  # noqa: F401
        import torch
        import transformers  # noqa: F401
    except ImportError as error:
        raise EngineUnavailable(
            f"the ltx2 engine needs torch, diffusers and transformers ({error}): "
            f"{INSTALL_HINT}") from error
    return torch


def choose_runtime(settings: Settings, torch: Any) -> Runtime:
    """Resolve every "auto" setting for this machine."""
    device = settings.ltx2_device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise EngineUnavailable(f"REELSERVE_LTX2_DEVICE is {device!r} but CUDA is not available")
    free_gib = None
    if device.startswith("cuda"):
        free, _total = torch.cuda.mem_get_info(torch.device(device))
        free_gib = free / GIB
    dtype = settings.ltx2_dtype
    if dtype == "auto":
        dtype = "float32" if free_gib is None else (
            "bfloat16" if torch.cuda.is_bf16_supported() else "float16")
    offload = settings.ltx2_offload
    if offload == "auto":
        offload = "none" if free_gib is None or free_gib >= WHOLE_ON_GPU_GIB else (
            "model" if free_gib >= MODEL_OFFLOAD_GIB else "sequential")
    if offload not in OFFLOADS:
        raise EngineUnavailable(f"REELSERVE_LTX2_OFFLOAD must be auto or one of "
                                f"{', '.join(OFFLOADS)}, not {offload!r}")
    tiling = settings.ltx2_vae_tiling
    if tiling == "auto":
        vae_tiling = free_gib is not None and free_gib < WHOLE_ON_GPU_GIB
    elif tiling in ("on", "off"):
        vae_tiling = tiling == "on"
    else:
        raise EngineUnavailable(f"REELSERVE_LTX2_VAE_TILING must be auto, on or off, "
                                f"not {tiling!r}")
    return Runtime(device, dtype, offload, vae_tiling, free_gib)


def load_pipeline(path: Path, runtime: Runtime, torch: Any) -> Any:
    """``LTX2ConditionPipeline.from_pretrained(path)`` placed as ``runtime`` says.

    One pipeline class serves text-to-video (no conditions) and image-to-video
    (frames pinned at the first and last index), whatever pipeline class the
    directory was saved as: the components are the same.
    """
    from diffusers import LTX2ConditionPipeline
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    # Loading bars would flood the worker's log; the engine reports its own progress.
    for library in (diffusers_logging, transformers_logging):
        quiet: Any = library.disable_progress_bar  # untyped in diffusers
        quiet()
    dtype = getattr(torch, runtime.dtype, None)
    if not isinstance(dtype, torch.dtype):
        raise EngineUnavailable(f"REELSERVE_LTX2_DTYPE {runtime.dtype!r} is not a torch dtype")
    pipeline_class: Any = LTX2ConditionPipeline  # from_pretrained is untyped
    try:
        pipe = pipeline_class.from_pretrained(str(path), dtype=dtype, local_files_only=True)
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as error:
        raise EngineUnavailable(
            f"cannot load the LTX-2 model at {path}: {type(error).__name__}: {error}. "
            "Download it again with `reelserve models pull ltx-2`") from error
    if runtime.offload == "model":
        pipe.enable_model_cpu_offload(device=runtime.device)
    elif runtime.offload == "sequential":
        pipe.enable_sequential_cpu_offload(device=runtime.device)
    else:
        pipe.to(runtime.device)
    if runtime.vae_tiling:
        pipe.vae.enable_tiling()
    pipe.set_progress_bar_config(disable=True)
    return pipe
