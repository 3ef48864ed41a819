"""Load the LTX-2 pipelines once and place them as the plan says; the speed options.

Placement comes from ``placement.choose_placement`` with the loaded components'
own sizes and the GPU's free memory (or ``REELSERVE_LTX2_GPU_MEMORY_GIB``), so the
engine runs the plan ``reelserve models plan`` prints. On a CPU everything stays
on the CPU. Speed options (docs/engines.md, "Settings"): compile of the repeated
transformer blocks, the attention backend, FP8 weight storage, first-block cache.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reelserve.engines.ltx2.placement import (
    GIB,
    Placement,
    Workload,
    choose_placement,
    forced_placement,
)
from reelserve.errors import EngineUnavailable
from reelserve.model_store import INSTALL_HINT
from reelserve.settings_sections import Ltx2Settings

# REELSERVE_LTX2_ATTENTION (its words: LTX2_CHOICES) to diffusers' attention backend.
ATTENTION_BACKENDS = {"sdpa": "native", "flash": "flash", "sage": "sage"}


@dataclass(frozen=True)
class Runtime:
    """How the pipeline runs; shown in the worker log and in errors."""

    device: str
    dtype: str
    placement: Placement
    vae_tiling: bool
    free_gib: float | None
    options: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        free = "" if self.free_gib is None else f", {self.free_gib:.0f} GiB planned"
        where = ", ".join(f"{name} {self.placement.where[name]}/{self.placement.storage[name]}"
                          for name in sorted(self.placement.where))
        opts = "".join(f", {key} {value}" for key, value in self.options.items())
        return (f"{self.device} {self.dtype}{free}, peak {self.placement.peak_gib} GiB "
                f"({where}), VAE tiling {'on' if self.vae_tiling else 'off'}{opts}")


def import_torch() -> Any:
    """torch, diffusers and transformers with the LTX-2 classes, or ``EngineUnavailable``.

    Any failure counts, not only a missing package: an incompatible transformers
    raises other errors from inside diffusers' lazy imports.
    """
    try:
        import torch
        from diffusers import LTX2ConditionPipeline, LTX2LatentUpsamplePipeline  # noqa: F401
        from diffusers.pipelines.ltx2.latent_upsampler import (  # noqa: F401
            LTX2LatentUpsamplerModel,
        )
    except Exception as error:
        raise EngineUnavailable(
            f"the ltx2 engine cannot import torch, diffusers and transformers "
            f"({root_cause(error)}): {INSTALL_HINT}") from error
    return torch


def root_cause(error: BaseException) -> str:
    """The innermost error's type and first line: diffusers' lazy imports wrap the real
    cause in a RuntimeError that says only "look up to see its traceback"."""
    root = error
    while (root.__cause__ or root.__context__) is not None:
        root = root.__cause__ or root.__context__  # type: ignore[assignment]
    text = str(root).splitlines()[0] if str(root) else ""
    return f"{type(root).__name__}: {text}" if text else type(root).__name__


def choose_runtime(settings: Ltx2Settings, torch: Any, sizes: dict[str, int],
                   work: Workload) -> Runtime:
    """Resolve every "auto" setting for this machine and these component sizes."""
    device = settings.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise EngineUnavailable(f"REELSERVE_LTX2_DEVICE is {device!r} but CUDA is not available")
    free_gib = settings.gpu_memory_gib or None
    if device.startswith("cuda") and free_gib is None:
        free, _total = torch.cuda.mem_get_info(torch.device(device))
        free_gib = free / GIB
    dtype = settings.dtype
    if dtype == "auto":
        dtype = "float32" if device == "cpu" else (
            "bfloat16" if torch.cuda.is_bf16_supported() else "float16")
    weights = settings.weights
    if device == "cpu" or settings.offload != "auto":
        offload = "none" if device == "cpu" else settings.offload
        placement = forced_placement(sizes, offload, work, "fp8" if weights == "fp8" else "bf16")
    else:
        placement = choose_placement(sizes, free_gib or 0.0, work, weights)
    tiling = settings.vae_tiling
    vae_tiling = (device != "cpu") if tiling == "auto" else tiling == "on"
    return Runtime(device, dtype, placement, vae_tiling, free_gib, speed_options(settings))


def speed_options(settings: Ltx2Settings) -> dict[str, str]:
    """The speed settings (their words were checked when the settings were loaded)."""
    options = {"attention": settings.attention, "cache": settings.cache,
               "compile": "on" if settings.compile else "off"}
    if settings.cache != "off":
        options["cache_threshold"] = str(settings.cache_threshold)
    return options


def load_components(path: Path, torch: Any, dtype_name: str) -> tuple[Any, Any]:
    """The keyframed condition pipeline and the latent upsampler (None if absent)."""
    from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    from reelserve.engines.ltx2.keyframes import KeyframedPipeline

    for library in (diffusers_logging, transformers_logging):
        quiet: Any = library.disable_progress_bar  # loading bars would flood the log
        quiet()
    dtype = getattr(torch, dtype_name, None)
    if not isinstance(dtype, torch.dtype):
        raise EngineUnavailable(f"REELSERVE_LTX2_DTYPE {dtype_name!r} is not a torch dtype")
    pipeline_class: Any = KeyframedPipeline  # from_pretrained is untyped
    upsampler_class: Any = LTX2LatentUpsamplerModel
    try:
        pipe = pipeline_class.from_pretrained(str(path), dtype=dtype, local_files_only=True)
        upsampler = None
        if (path / "latent_upsampler" / "config.json").is_file():
            upsampler = upsampler_class.from_pretrained(str(path / "latent_upsampler"),
                                                        torch_dtype=dtype)
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as error:
        raise EngineUnavailable(
            f"cannot load the LTX-2 model at {path}: {type(error).__name__}: {error}. "
            "Download it again with `reelserve models pull ltx-2`") from error
    pipe.set_progress_bar_config(disable=True)
    return pipe, upsampler


def component_bytes(pipe: Any, upsampler: Any) -> dict[str, int]:
    """bf16 bytes of each loaded component, keyed by its model_index.json name."""
    named = {"transformer": pipe.transformer, "text_encoder": pipe.text_encoder,
             "connectors": pipe.connectors, "vae": pipe.vae, "audio_vae": pipe.audio_vae,
             "vocoder": pipe.vocoder}
    if upsampler is not None:
        named["latent_upsampler"] = upsampler
    return {name: 2 * sum(p.numel() for p in module.parameters())
            for name, module in named.items()}


def apply_runtime(pipe: Any, upsampler: Any, runtime: Runtime, torch: Any) -> list[Any]:
    """Storage, placement, tiling and speed options, in that order; returns the hooks
    of offloaded components, to send them back after each use."""
    compute = getattr(torch, runtime.dtype)
    if runtime.placement.storage.get("transformer") == "fp8":
        pipe.transformer.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn,
                                                  compute_dtype=compute)
    modules = {"transformer": pipe.transformer, "text_encoder": pipe.text_encoder,
               "connectors": pipe.connectors, "vae": pipe.vae, "audio_vae": pipe.audio_vae,
               "vocoder": pipe.vocoder, "latent_upsampler": upsampler}
    hooks = []
    for name, module in modules.items():
        if module is not None:
            hook = _place(module, runtime.placement.where.get(name, "gpu"), runtime.device, torch)
            if hook is not None:
                hooks.append(hook)
    if runtime.vae_tiling:
        pipe.vae.enable_tiling()
    options = runtime.options
    if options.get("attention", "sdpa") != "sdpa":
        try:
            pipe.transformer.set_attention_backend(ATTENTION_BACKENDS[options["attention"]])
        except (ImportError, RuntimeError, ValueError) as error:
            raise EngineUnavailable(f"REELSERVE_LTX2_ATTENTION={options['attention']} cannot be "
                                    f"used here: {error}") from error
    if options.get("cache") == "first-block":
        from diffusers.hooks import first_block_cache

        register_ltx2_blocks_for_caching()
        pipe.transformer.enable_cache(first_block_cache.FirstBlockCacheConfig(threshold=float(
            options.get("cache_threshold", "0.05"))))
    if options.get("compile") == "on":
        pipe.transformer.compile_repeated_blocks(fullgraph=False)
    return hooks


def register_ltx2_blocks_for_caching() -> None:
    """diffusers 0.42.1's block caches know LTX (1) blocks, not LTX-2's. An LTX-2 block
    takes and returns the video and the audio stream: the audio stream is the
    "encoder" stream the first-block cache carries alongside the video one."""
    from diffusers.hooks import _helpers
    from diffusers.models.transformers.transformer_ltx2 import LTX2VideoTransformerBlock

    metadata_class: Any = _helpers.TransformerBlockMetadata

    class AudioStreamMetadata(metadata_class):  # type: ignore[misc]
        """The cache hook asks for "encoder_hidden_states" by that name (0.42.1)."""

        def _get_parameter_from_args_kwargs(self, identifier: str, args: Any = (),
                                            kwargs: Any = None) -> Any:
            if identifier == "encoder_hidden_states":
                identifier = "audio_hidden_states"
            return super()._get_parameter_from_args_kwargs(identifier, args, kwargs)

    registry: Any = _helpers.TransformerBlockRegistry
    registry._register()
    if LTX2VideoTransformerBlock not in registry._registry:
        registry.register(model_class=LTX2VideoTransformerBlock, metadata=AudioStreamMetadata(
            return_hidden_states_index=0, return_encoder_hidden_states_index=1,
            encoder_hidden_states_argument_name="audio_hidden_states"))


def _place(module: Any, where: str, device: str, torch: Any) -> Any:
    """gpu: moved once; offload: moved in when called, out by its hook; group-offload:
    blocks streamed in and out around each call."""
    if where == "gpu" or device == "cpu":
        module.to(device)
    elif where == "offload":
        import accelerate  # type: ignore[import-untyped]

        offload_with_hook: Any = accelerate.cpu_offload_with_hook  # untyped package
        return offload_with_hook(module, torch.device(device))[1]
    elif hasattr(module, "enable_group_offload"):
        module.enable_group_offload(torch.device(device), offload_device=torch.device("cpu"),
                                    offload_type="leaf_level", use_stream=True)
    else:
        from diffusers.hooks import group_offloading

        group_offloading.apply_group_offloading(module, onload_device=torch.device(device),
                               offload_device=torch.device("cpu"), offload_type="leaf_level",
                               use_stream=True)
    return None
