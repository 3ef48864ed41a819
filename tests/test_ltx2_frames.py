"""The pipeline's frames to I420 one frame at a time: the pixels of converting the whole
clip at once (within one level: ties round to even), for float16, float32, bfloat16 and
uint8 frames, cropped or scaled up, in order across shots, and a conversion error
reaches the encoder's side."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import pytest

from reelserve.media.encode import rgb_to_i420

torch: Any = pytest.importorskip("torch")
frames_module: Any = pytest.importorskip("reelserve.engines.ltx2.frames")
ShotFrames, planes_ahead = frames_module.ShotFrames, frames_module.planes_ahead


def random_clip(frames: int, height: int, width: int, seed: int = 0) -> Any:
    generator = torch.Generator().manual_seed(seed)
    clip = torch.rand(frames, 3, height, width, generator=generator)
    clip[:, :, 10:12] = 0.0  # the range's ends, inside every crop below
    clip[:, :, 12:14] = 1.0
    return clip


def close_to(got: Any, expected: Any) -> bool:
    return bool(np.abs(got.astype(np.int16) - expected.astype(np.int16)).max() <= 1)


def whole_clip_rgb(clip: Any, size: tuple[int, int]) -> np.ndarray[Any, Any]:
    """The conversion the engine used to do: the clip at once, then a centre crop."""
    rgb = (clip.float().mul(255.0).add_(0.5).clamp_(0, 255).to(torch.uint8)
           .permute(0, 2, 3, 1).contiguous().numpy())
    height, width = rgb.shape[1:3]
    left, top = (width - size[0]) // 2, (height - size[1]) // 2
    return np.ascontiguousarray(rgb[:, top:top + size[1], left:left + size[0]])


@pytest.mark.parametrize("dtype", ["float16", "float32", "bfloat16", "uint8"])
def test_each_frame_gives_the_planes_of_the_whole_clip_conversion(dtype: str) -> None:
    clip = random_clip(5, 72, 96)
    if dtype == "uint8":
        clip = clip.mul(255).add(0.5).clamp(0, 255).to(torch.uint8)
        expected = clip.permute(0, 2, 3, 1).contiguous().numpy()[:, 4:68, 8:88]
    else:
        clip = clip.to(getattr(torch, dtype))
        expected = whole_clip_rgb(clip, (80, 64))
    before = clip.clone()
    shot = ShotFrames(clip, 4, (80, 64), torch)
    planes = list(planes_ahead([shot], ahead=2))
    assert len(planes) == 4  # the fifth generated frame is cut
    for index, frame in enumerate(planes):
        assert frame.dtype == np.uint8 and frame.shape == (96, 80)
        assert np.array_equal(frame, rgb_to_i420(shot.rgb(index)))
        assert close_to(shot.rgb(index), expected[index])
    assert torch.equal(clip, before)  # the pipeline's tensor is left as it was


def test_a_render_smaller_than_the_output_is_cropped_then_scaled() -> None:
    clip = random_clip(2, 72, 128)
    shot = ShotFrames(clip, 2, (256, 128), torch)  # 2:1 output from a 16:9-ish render
    cropped = whole_clip_rgb(clip, (128, 64))
    expected = cv2.resize(cropped[1], (256, 128), interpolation=cv2.INTER_CUBIC)
    assert shot.rgb(1).shape == (128, 256, 3)
    assert close_to(shot.rgb(1), expected)


def test_shots_follow_each_other_in_order() -> None:
    first, second = random_clip(3, 32, 32, seed=1), random_clip(4, 32, 32, seed=2)
    shots = [ShotFrames(first, 3, (32, 32), torch), ShotFrames(second, 2, (32, 32), torch)]
    planes = list(planes_ahead(shots, ahead=3))
    expected = [*whole_clip_rgb(first, (32, 32)), *whole_clip_rgb(second[:2], (32, 32))]
    assert len(planes) == 5
    rgbs = [shot.rgb(index) for shot in shots for index in range(len(shot))]
    for got, rgb, old in zip(planes, rgbs, expected, strict=True):
        assert np.array_equal(got, rgb_to_i420(rgb)) and close_to(rgb, old)


def test_a_conversion_error_reaches_the_consumer_and_closing_early_stops() -> None:
    clip = random_clip(3, 32, 32)
    shot = ShotFrames(clip, 3, (32, 32), torch)
    shot.frames = clip[:, :2]  # a broken frame tensor: two channels
    with pytest.raises(cv2.error):
        next(planes_ahead([shot]))
    frames = planes_ahead([ShotFrames(random_clip(40, 32, 32), 40, (32, 32), torch)], ahead=2)
    next(frames)
    frames.close()  # the pending conversions are cancelled, the thread ends
    assert next(frames, None) is None


def test_a_shot_shorter_than_asked_is_refused() -> None:
    with pytest.raises(ValueError, match="has 3 frames, 4 were asked for"):
        ShotFrames(random_clip(3, 32, 32), 4, (32, 32), torch)
