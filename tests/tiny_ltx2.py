"""Tiny random-weight LTX-2 components, saved like a real model directory.

The configs are those of diffusers' own ``tests/pipelines/ltx2/testing_utils.py``.
Those tests download a tiny Gemma 3 from the hub; here the text encoder is built
from a ``Gemma3Config`` and the tokenizer is trained on a few words, so nothing
is fetched. The text config's width (32) must equal the connectors' width
(4 heads x 8 dims), or the connectors' RMSNorm refuses it.

The components are saved as an ``LTX2Pipeline`` (what ``Lightricks/LTX-2``'s
``model_index.json`` names), so the engine loads them the way it loads real weights.
"""

from __future__ import annotations

import json
from pathlib import Path

from reelserve.model_store import DISTILLED_SAMPLING

VOCABULARY = (
    "a the of and in on at with slow fast camera pan push orbit lighthouse night rain "
    "snow forest temple fog light dust robot dancing cat city street sunset ocean "
    "blur distort low quality subject voice speaks shot"
)
WORDS = tuple(VOCABULARY.split())
SPECIAL = ["<pad>", "<eos>", "<bos>", "<unk>"]


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


def build_pipeline() -> object:
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
        audio_attention_head_dim=4, audio_cross_attention_dim=8, num_layers=2,
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
    vae = AutoencoderKLLTX2Video(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8,),
        decoder_block_out_channels=(8,), layers_per_block=(1,), decoder_layers_per_block=(1, 1),
        spatio_temporal_scaling=(True,), decoder_spatio_temporal_scaling=(True,),
        decoder_inject_noise=(False, False), downsample_type=("spatial",),
        upsample_residual=(False,), upsample_factor=(1,), timestep_conditioning=False,
        patch_size=1, patch_size_t=1, encoder_causal=True, decoder_causal=False,
    )
    torch.manual_seed(0)
    audio_vae = AutoencoderKLLTX2Audio(
        base_channels=4, output_channels=2, ch_mult=(1,), num_res_blocks=1,
        attn_resolutions=None, in_channels=2, resolution=32, latent_channels=2,
        norm_type="pixel", causality_axis="height", dropout=0.0, mid_block_add_attention=False,
        sample_rate=16000, mel_hop_length=160, is_causal=True, mel_bins=8,
    )
    torch.manual_seed(0)
    vocoder = LTX2Vocoder(
        in_channels=2 * 8, hidden_channels=32, out_channels=2, upsample_kernel_sizes=[4, 4],
        upsample_factors=[2, 2], resnet_kernel_sizes=[3], resnet_dilations=[[1, 3, 5]],
        leaky_relu_negative_slope=0.1, output_sampling_rate=16000,
    )
    return LTX2Pipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, audio_vae=audio_vae,
        text_encoder=text_encoder, tokenizer=tokenizer, connectors=connectors,
        transformer=transformer, vocoder=vocoder,
    )


# What a two-layer random model can sample with: the distilled model's settings (no
# guidance passes, no STG, whose real blocks do not exist here, the legacy LTX-2.0
# timestep) with two default-schedule steps and short prompts.
TINY_PROFILE = {
    **{key: value for key, value in DISTILLED_SAMPLING.items() if key != "sigmas"},
    "num_inference_steps": 2,
    "max_sequence_length": 16,
}


def save_tiny_ltx2(path: Path) -> Path:
    """Build the tiny components and ``save_pretrained`` them, with a sampling profile."""
    pipeline = build_pipeline()
    pipeline.save_pretrained(str(path))  # type: ignore[attr-defined]
    profile = {"variant": "tiny-test", "sampling": TINY_PROFILE}
    (path / "reelserve-ltx2.json").write_text(json.dumps(profile, indent=2) + "\n")
    return path


if __name__ == "__main__":  # python tests/tiny_ltx2.py DIR: a tiny model to serve by hand
    import sys

    print(save_tiny_ltx2(Path(sys.argv[1])))
