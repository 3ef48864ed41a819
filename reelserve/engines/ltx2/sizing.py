"""Sizes and compute of the full-size LTX-2 components, counted on torch's meta device.

The component configs live in ``configs/ltx-<version>.json``, copied from diffusers'
conversion script (the file names its commit). Each component is instantiated on
the meta device, so nothing is allocated and no weights are needed; parameters are
counted, and a transformer pass is run under ``torch.utils.flop_counter`` to
measure its FLOPs. Needs torch, diffusers and transformers, imported lazily.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

COMPONENTS = ("transformer", "text_encoder", "connectors", "vae", "audio_vae", "vocoder",
              "latent_upsampler")
TEXT_TOKENS = 1024  # the pipeline pads prompts to max_sequence_length
AUDIO_LATENTS_PER_SECOND = 16_000 / 160 / 4  # audio VAE: 16 kHz, hop 160, 4x in time


@dataclass(frozen=True)
class ModelSizes:
    """Parameter counts and bf16 bytes of every component of one LTX-2 generation."""

    version: str
    params: dict[str, int]
    bf16_bytes: dict[str, int]


def component_configs(version: str = "2.0") -> dict[str, dict[str, Any]]:
    """The full-size configs kept in the package, keyed by ``model_index.json`` name."""
    name = f"ltx-{version}.json"
    text = resources.files("reelserve.engines.ltx2").joinpath("configs", name).read_text()
    data: dict[str, Any] = json.loads(text)
    components: dict[str, dict[str, Any]] = data["components"]
    return components


def build_on_meta(name: str, config: dict[str, Any]) -> Any:
    """The component ``name`` built from ``config`` on the meta device (no memory)."""
    import torch

    settings = {k: v for k, v in config.items() if not k.startswith("_")}
    with torch.device("meta"):
        if name == "text_encoder":
            from transformers import Gemma3Config, Gemma3ForConditionalGeneration

            return Gemma3ForConditionalGeneration(Gemma3Config(**settings))
        return _diffusers_class(config["_class_name"])(**settings)


@cache
def meta_component(version: str, name: str) -> Any:
    """Built once per process: the 19B transformer takes seconds even on meta."""
    return build_on_meta(name, component_configs(version)[name])


@cache
def model_sizes(version: str = "2.0") -> ModelSizes:
    """Parameter counts of every component, counted on the meta device."""
    params: dict[str, int] = {}
    for name in component_configs(version):
        module = meta_component(version, name)
        params[name] = sum(p.numel() for p in module.parameters())
    return ModelSizes(version, params, {name: 2 * count for name, count in params.items()})


@cache
def transformer_pass_flops(version: str, latent_frames: int, latent_height: int,
                           latent_width: int, audio_tokens: int, batch: int = 1) -> int:
    """FLOPs of one transformer forward pass, measured by torch's FLOP counter on meta."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    config = component_configs(version)["transformer"]
    transformer = meta_component(version, "transformer")
    video_tokens = latent_frames * latent_height * latent_width
    # LTX-2.0 projects the connectors' output (caption_channels wide) inside the
    # transformer; later generations get it already at the attention width.
    prompt = config.get("use_prompt_embeddings", True)
    text_width = config["caption_channels"] if prompt else config["cross_attention_dim"]
    audio_text_width = config["caption_channels"] if prompt else config[
        "audio_cross_attention_dim"]
    kwargs: dict[str, Any] = {"device": "meta"}  # FLOPs do not depend on the dtype
    inputs = {
        "hidden_states": torch.empty(batch, video_tokens, config["in_channels"], **kwargs),
        "audio_hidden_states": torch.empty(batch, audio_tokens, config["audio_in_channels"],
                                           **kwargs),
        "encoder_hidden_states": torch.empty(batch, TEXT_TOKENS, text_width, **kwargs),
        "audio_encoder_hidden_states": torch.empty(batch, TEXT_TOKENS, audio_text_width,
                                                   **kwargs),
        "timestep": torch.full((batch,), 500.0, device="meta"),
        "audio_timestep": torch.full((batch,), 500.0, device="meta"),
        "sigma": torch.full((batch,), 0.5, device="meta"),
        "audio_sigma": torch.full((batch,), 0.5, device="meta"),
    }
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        transformer(
            **inputs, num_frames=latent_frames, height=latent_height, width=latent_width,
            audio_num_frames=audio_tokens, return_dict=False)
    return int(counter.get_total_flops())


def upsampler_flops(version: str, latent_frames: int, latent_height: int,
                    latent_width: int) -> int:
    """FLOPs of the x2 latent upsampler on one clip's latents (FLOP counter, meta)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    config = component_configs(version)["latent_upsampler"]
    upsampler = meta_component(version, "latent_upsampler")
    latents = torch.empty(1, config["in_channels"], latent_frames, latent_height, latent_width,
                          device="meta")
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        upsampler(latents)
    return int(counter.get_total_flops())


def _diffusers_class(name: str) -> Any:
    import diffusers
    from diffusers.pipelines import ltx2

    found = getattr(ltx2, name, None) or getattr(diffusers, name, None)
    if found is None:
        from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder

        found = {"LTX2Vocoder": LTX2Vocoder}.get(name)
    if found is None:
        raise LookupError(f"diffusers has no class {name}")
    return found
