"""Tiny random-weight LTX-2 components, saved like a real model directory.

The configs are those of diffusers' own ``tests/pipelines/ltx2/testing_utils.py``.
Those tests download a tiny Gemma 3 from the hub; here the text encoder is built
from a ``Gemma3Config`` and the tokenizer is trained on a few words, so nothing
is fetched. The text config's width (32) must equal the connectors' width
(4 heads x 8 dims), or the connectors' RMSNorm refuses it.

The components are saved as an ``LTX2Pipeline`` (what ``Lightricks/LTX-2``'s
``model_index.json`` names), so the engine loads them the way it loads real weights.
They keep the real models' structure where it matters to the code paths: the video
VAE compresses 32x in space and 8x in time, the transformer has the block STG
perturbs, the vocoder upsamples to 24 kHz, and a latent upsampler sits in
``latent_upsampler/`` as in the official repository.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reelserve.engines.ltx2.profile import GENERATIONS

VOCABULARY = (
    "a the of and in on at with slow fast camera pan push orbit lighthouse night rain "
    "snow forest temple fog light dust robot dancing cat city street sunset ocean "
    "blur distort low quality subject voice speaks shot"
)
WORDS = tuple(VOCABULARY.split())
SPECIAL = ["<pad>", "<eos>", "<bos>", "<unk>"]
# Enough blocks for the STG block the LTX-2.0 profile names (29) to exist and run;
# the service tests use two blocks and the distilled profile, which has no STG pass.
STG_LAYERS = GENERATIONS["2.0"].stg_block + 1


def build_tokenizer() -> object:
    """A word-level fast tokenizer with Gemma's special tokens, padding on the left."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: index for index, token in enumerate([*SPECIAL, *WORDS])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>", bos_token="<bos>",
        unk_token="<unk>", padding_side="left", model_max_length=64,
    )


def build_text_encoder(vocab_size: int) -> object:
    """A two-layer Gemma 3 (text config plus a minimal SigLIP vision tower)."""
    import torch
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    config = Gemma3Config(
        text_config={
            "vocab_size": vocab_size, "hidden_size": 32, "intermediate_size": 64,
            "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
            "head_dim": 16, "max_position_embeddings": 128, "sliding_window": 16,
            "pad_token_id": 0, "eos_token_id": 1, "bos_token_id": 2,
        },
        vision_config={
            "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
            "num_attention_heads": 2, "image_size": 32, "patch_size": 8,
        },
        mm_tokens_per_image=4,
    )
    torch.manual_seed(0)
    return Gemma3ForConditionalGeneration(config).eval()


def build_pipeline(layers: int = 2) -> object:
    import torch
    from diffusers import (
        AutoencoderKLLTX2Audio,
        AutoencoderKLLTX2Video,
        FlowMatchEulerDiscreteScheduler,
        LTX2Pipeline,
        LTX2VideoTransformer3DModel,
    )
    from diffusers.pipelines.ltx2 import LTX2TextConnectors
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder

    tokenizer = build_tokenizer()
    text_encoder = build_text_encoder(len(SPECIAL) + len(WORDS))
    text_width = 32
    text_layers = 2
    torch.manual_seed(0)
    transformer = LTX2VideoTransformer3DModel(
        in_channels=4, out_channels=4, patch_size=1, patch_size_t=1,
        num_attention_heads=2, attention_head_dim=8, cross_attention_dim=16,
        audio_in_channels=4, audio_out_channels=4, audio_num_attention_heads=2,
        audio_attention_head_dim=4, audio_cross_attention_dim=8, num_layers=layers,
        qk_norm="rms_norm_across_heads", caption_channels=text_width,
        rope_double_precision=False, rope_type="split",
    )
    torch.manual_seed(0)
    connectors = LTX2TextConnectors(
        caption_channels=text_width, text_proj_in_factor=text_layers + 1,
        video_connector_num_attention_heads=4, video_connector_attention_head_dim=8,
        video_connector_num_layers=1, video_connector_num_learnable_registers=None,
        audio_connector_num_attention_heads=4, audio_connector_attention_head_dim=8,
        audio_connector_num_layers=1, audio_connector_num_learnable_registers=None,
        connector_rope_base_seq_len=32, rope_theta=10000.0, rope_double_precision=False,
        causal_temporal_positioning=False, rope_type="split",
    )
    torch.manual_seed(0)
    vae = AutoencoderKLLTX2Video(  # the real layout (32x space, 8x time), narrow
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8, 8, 8),
        down_block_types=("LTX2VideoDownBlock3D",) * 4, decoder_block_out_channels=(8, 16, 32),
        layers_per_block=(1, 1, 1, 1, 1), decoder_layers_per_block=(1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, True, True),
        decoder_spatio_temporal_scaling=(True, True, True),
        decoder_inject_noise=(False, False, False, False),
        downsample_type=("spatial", "temporal", "spatiotemporal", "spatiotemporal"),
        upsample_type=("spatiotemporal",) * 3, upsample_residual=(True, True, True),
        upsample_factor=(2, 2, 2), timestep_conditioning=False, patch_size=4, patch_size_t=1,
        encoder_causal=True, decoder_causal=False, spatial_compression_ratio=32,
        temporal_compression_ratio=8,
    )
    torch.manual_seed(0)
    audio_vae = AutoencoderKLLTX2Audio(
        base_channels=4, output_channels=2, ch_mult=(1,), num_res_blocks=1,
        attn_resolutions=None, in_channels=2, resolution=32, latent_channels=2,
        norm_type="pixel", causality_axis="height", dropout=0.0, mid_block_add_attention=False,
        sample_rate=16000, mel_hop_length=160, is_causal=True, mel_bins=8,
    )
    torch.manual_seed(0)
    # The real LTX-2.0 vocoder's upsampling (6*5*2*2*2 = 240 samples per mel frame of
    # 10 ms: 24 kHz), narrow: a clip's raw audio is its duration times 24,000 samples.
    vocoder = LTX2Vocoder(
        in_channels=2 * 8, hidden_channels=32, out_channels=2,
        upsample_kernel_sizes=[16, 15, 8, 4, 4], upsample_factors=[6, 5, 2, 2, 2],
        resnet_kernel_sizes=[3], resnet_dilations=[[1, 3, 5]], leaky_relu_negative_slope=0.1,
        output_sampling_rate=24000,
    )
    return LTX2Pipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, audio_vae=audio_vae,
        text_encoder=text_encoder, tokenizer=tokenizer, connectors=connectors,
        transformer=transformer, vocoder=vocoder,
    )


def build_latent_upsampler(latent_channels: int) -> object:
    """The real x2 latent upsampler's layout (LTX-2.0: rational resampler), 32 channels
    (its GroupNorm has 32 groups)."""
    import torch
    from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel

    torch.manual_seed(0)
    return LTX2LatentUpsamplerModel(
        in_channels=latent_channels, mid_channels=32, num_blocks_per_stage=1, dims=3,
        spatial_upsample=True, temporal_upsample=False, rational_spatial_scale=2.0,
        use_rational_resampler=True,
    )


# Sampling overrides a random model needs: two base steps instead of 40 and short
# prompts. Everything else (guidance, STG on the profile's block, the refine
# sigmas) is the model profile's own.
TINY_OVERRIDES = {"num_inference_steps": 2, "max_sequence_length": 16}


def save_tiny_ltx2(path: Path, distilled: bool = True, layers: int = 2) -> Path:
    """Build the tiny components and ``save_pretrained`` them like a pulled model.

    The scheduler is written as diffusers' converter writes it: dynamic shifting
    for the full model, none for the distilled one (how the profile tells them apart).
    """
    from diffusers import FlowMatchEulerDiscreteScheduler

    pipeline: Any = build_pipeline(layers)
    pipeline.scheduler = FlowMatchEulerDiscreteScheduler(
        use_dynamic_shifting=not distilled, base_shift=0.95, max_shift=2.05,
        base_image_seq_len=1024, max_image_seq_len=4096,
        shift_terminal=None if distilled else 0.1)
    pipeline.save_pretrained(str(path))
    upsampler: Any = build_latent_upsampler(pipeline.vae.config.latent_channels)
    upsampler.save_pretrained(str(path / "latent_upsampler"))
    overrides = {k: v for k, v in TINY_OVERRIDES.items()
                 if not (distilled and k == "num_inference_steps")}
    (path / "reelserve-ltx2.json").write_text(json.dumps({"sampling": overrides}, indent=2))
    return path


if __name__ == "__main__":  # python tests/tiny_ltx2.py DIR: a tiny model to serve by hand
    import sys

    print(save_tiny_ltx2(Path(sys.argv[1])))
