"""Full-size LTX-2.0 on the meta device: parameter counts, bf16 bytes, the FLOPs the plan uses.

Built from the configs the package keeps (copied from diffusers' conversion
script); nothing is allocated and no weights are read.
"""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from reelserve.engines.ltx2.run_plan import build_run_plan
from reelserve.engines.ltx2.sizing import (
    model_sizes,
    transformer_pass_flops,
    upsampler_flops,
)

RANGES = {  # parameters, as published for LTX-2 19B and Gemma 3 12B
    "transformer": (18.5e9, 19.3e9),
    "text_encoder": (11.5e9, 12.5e9),
    "connectors": (1.3e9, 1.6e9),
    "vae": (1.1e9, 1.35e9),
    "audio_vae": (0.03e9, 0.08e9),
    "vocoder": (0.03e9, 0.08e9),
    "latent_upsampler": (0.4e9, 0.6e9),
}


def test_full_size_parameter_counts_and_bf16_bytes() -> None:
    sizes = model_sizes("2.0")
    assert set(sizes.params) == set(RANGES)
    for name, (low, high) in RANGES.items():
        assert low <= sizes.params[name] <= high, (name, sizes.params[name])
        assert sizes.bf16_bytes[name] == 2 * sizes.params[name]
    total_gib = sum(sizes.bf16_bytes.values()) / 1024**3
    assert 60 < total_gib < 68  # about 63 GiB without the upsampler, 64 with it


def test_transformer_flops_grow_with_the_tokens_and_match_the_recipe_figures() -> None:
    half = transformer_pass_flops("2.0", 16, 17, 30, 126)
    full = transformer_pass_flops("2.0", 16, 34, 60, 126)
    assert 2.5e14 < half < 3.0e14  # ~275 TFLOP per pass at 960x544, 121 frames
    assert 1.6e15 < full < 1.85e15  # ~1,714 TFLOP at 1920x1088
    assert full > 4 * half  # attention grows faster than the token count
    assert 0 < upsampler_flops("2.0", 16, 17, 30) < half


def test_the_plan_uses_those_flops() -> None:
    plan = build_run_plan(version="2.0", distilled=True, gpu_gib=141, duration=5,
                          aspect="16:9")
    half = transformer_pass_flops("2.0", 16, 17, 30, 126)
    full = transformer_pass_flops("2.0", 16, 34, 60, 126)
    expected = (8 * half + 3 * full + upsampler_flops("2.0", 16, 17, 30)) / 1e12
    assert plan.tflops == pytest.approx(expected)
    assert 7000 < plan.tflops < 7800  # about 7.4 PFLOP per 5 s clip
    full_model = build_run_plan(version="2.0", distilled=False, gpu_gib=141, duration=5,
                                aspect="16:9")
    assert full_model.tflops == pytest.approx(
        (40 * 4 * half + 3 * full + upsampler_flops("2.0", 16, 17, 30)) / 1e12)
