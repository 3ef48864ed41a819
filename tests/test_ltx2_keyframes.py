"""Keyframes land on exact pixel frames, checked where the pipeline builds its latents.

The tiny model's video VAE has the real layout (8x in time after the first frame),
so a 3 s shot generates 73 frames in 10 latent frames and keeps 72 of them: the
end image belongs on pixel frame 71, inside the last latent frame.
"""

from __future__ import annotations

from typing import Any

import pytest
from PIL import Image
from tiny_ltx2 import save_tiny_ltx2

torch = pytest.importorskip("torch")

FRAMES, KEPT, FPS = 73, 72, 24.0


@pytest.fixture(scope="module")
def pipe(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from reelserve.engines.ltx2.keyframes import KeyframedPipeline

    model = save_tiny_ltx2(tmp_path_factory.mktemp("tiny-ltx2"))
    loaded: Any = KeyframedPipeline.from_pretrained(str(model), local_files_only=True)
    return loaded


def _prepare(pipe: Any, conditions: list[Any]) -> tuple[Any, Any, Any, Any]:
    return pipe.prepare_latents(  # type: ignore[no-any-return]
        conditions=conditions, batch_size=1, num_channels_latents=4, height=64, width=64,
        num_frames=FRAMES, frame_rate=FPS, noise_scale=1.0, dtype=torch.float32,
        device=torch.device("cpu"), generator=torch.Generator().manual_seed(0))


def test_start_and_end_images_sit_on_pixel_frames_0_and_the_last_kept_frame(pipe: Any) -> None:
    from reelserve.engines.ltx2.keyframes import PixelCondition

    image = Image.new("RGB", (96, 54), (200, 40, 40))
    start = PixelCondition(frames=image, crf=0, pixel_frame=0)
    end = PixelCondition(frames=image, crf=0, pixel_frame=KEPT - 1)
    latents, mask, _clean, coords = _prepare(pipe, [start, end])
    tokens_per_frame = 2 * 2  # 64x64 at 32x
    base_tokens = 10 * tokens_per_frame
    assert (start.index, end.index) == (0, 9)  # the last of 10 latent frames
    # The start image replaces the first latent frame's tokens, fully clean.
    assert torch.all(mask[0, :tokens_per_frame] == 1.0)
    assert torch.all(mask[0, tokens_per_frame:base_tokens] == 0.0)
    # The end image is appended as keyframe tokens whose time spans exactly pixel 71.
    assert latents.shape[1] == base_tokens + tokens_per_frame
    assert torch.all(mask[0, base_tokens:] == 1.0)
    assert torch.allclose(coords[0, 0, :, 0], torch.full((tokens_per_frame,), 71 / FPS))
    assert torch.allclose(coords[0, 0, :, 1], torch.full((tokens_per_frame,), 72 / FPS))


def test_the_stock_latent_index_would_put_the_end_image_frames_early(pipe: Any) -> None:
    from diffusers.pipelines.ltx2.pipeline_ltx2_condition import LTX2VideoCondition

    image = Image.new("RGB", (64, 64))
    _latents, _mask, _clean, coords = _prepare(pipe, [LTX2VideoCondition(image, -1, 1.0, 0)])
    assert float(coords[0, 0, 0, 0]) * FPS == pytest.approx(65.0)  # 8*(10-1-1)+1, not 71


def test_a_mid_clip_keyframe_keeps_its_own_pixel_frame(pipe: Any) -> None:
    from reelserve.engines.ltx2.keyframes import PixelCondition

    image = Image.new("RGB", (64, 64))
    middle = PixelCondition(frames=image, crf=0, pixel_frame=36, strength=0.5)
    _latents, mask, _clean, coords = _prepare(pipe, [middle])
    assert middle.index == 5  # pixels 33..40
    assert float(coords[0, 0, 0, 0]) * FPS == pytest.approx(36.0)
    assert torch.allclose(mask[0, 40:], torch.full_like(mask[0, 40:], 0.5))


def test_keyframe_images_are_not_re_encoded(pipe: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from diffusers.pipelines.ltx2 import pipeline_ltx2_condition

    from reelserve.engines.ltx2.keyframes import PixelCondition

    seen: list[int] = []
    real = pipeline_ltx2_condition.apply_image_conditioning_crf

    def spy(image: Any, crf: int) -> Any:
        seen.append(crf)
        return real(image, crf)

    monkeypatch.setattr(pipeline_ltx2_condition, "apply_image_conditioning_crf", spy)
    _prepare(pipe, [PixelCondition(frames=Image.new("RGB", (64, 64)), crf=0, pixel_frame=0)])
    assert seen == [0]  # crf 0: the H.264 round trip is skipped


def test_every_element_image_becomes_a_keyframe_at_its_pixel_frame(pipe: Any) -> None:
    from reelserve.engines.base import ElementImages, GenerationInputs
    from reelserve.engines.ltx2.engine import shot_conditions
    from reelserve.engines.ltx2.keyframes import PixelCondition
    from reelserve.engines.ltx2.plan import Guide, ShotJob, element_guides

    frontal, reference = Image.new("RGB", (64, 64), (250, 250, 0)), Image.new("RGB", (64, 64))
    inputs = GenerationInputs(start_image=Image.new("RGB", (64, 64), (0, 0, 250)),
                              elements=(ElementImages(frontal, (reference,)),))
    guides = element_guides("@Element1 waves", inputs, KEPT, first_frame_free=False)
    assert [(g.image, g.frame) for g in guides] == [("element:1", 24), ("element:1:1", 47)]
    shot = ShotJob(0, "x", KEPT, FRAMES, (Guide("start", 0), *guides))
    latents, mask, clean, coords = _prepare(pipe, shot_conditions(shot, inputs))
    per_frame, base = 4, 40
    assert latents.shape[1] == base + 2 * per_frame  # two keyframes appended
    assert torch.all(mask[0, :per_frame] == 1.0)  # the start image, at full strength
    assert torch.allclose(mask[0, base:], torch.full_like(mask[0, base:], 0.4))
    assert [round(float(coords[0, 0, i * per_frame, 0]) * FPS) for i in range(2)] == [24, 47]
    # The second keyframe's tokens are the reference image's own latents.
    _l, _m, alone, _c = _prepare(pipe, [PixelCondition(frames=reference, crf=0,
                                                       pixel_frame=47, strength=0.4)])
    assert torch.allclose(clean[0, base + per_frame:], alone[0, base:])
    assert not torch.allclose(clean[0, base:base + per_frame], alone[0, base:])
