"""The stages of one generation: sizes, latent frames, steps, and where keyframes land.

Lightricks' high-resolution recipe (``TI2VidTwoStages``, ``DistilledPipeline``) is
two stages: the base at half resolution, the x2 latent upsampler, then a short
refinement at full resolution. The full resolution is the output's size rounded
up to a multiple of 64 (so the half is a multiple of 32), and the decoded frames
are cropped to the output: 1920x1088 -> 1920x1080, never a pixel upscale. The
``fast`` profile is one stage at the same (multiple-of-32) size.

Pure Python, no torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SPATIAL = 32  # LTX-2's video VAE: 32x in space ...
TEMPORAL = 8  # ... and 8x in time after the first frame


@dataclass(frozen=True)
class Stage:
    """One pipeline call (or the upsampler between two)."""

    name: str  # base, upsample, refine (or single for the fast profile)
    width: int
    height: int
    latent_frames: int
    steps: int


@dataclass(frozen=True)
class Geometry:
    """A model's compression: 32x/8x for real LTX-2, smaller for the tiny test model."""

    spatial: int = SPATIAL
    temporal: int = TEMPORAL


def render_size(output: tuple[int, int], long_side: int, two_stage: bool,
                geometry: Geometry = Geometry()) -> tuple[int, int]:
    """The size the last stage renders at.

    ``long_side`` 0: the output rounded up to the multiple (64 for two stages, so the
    base is a multiple of 32), to be cropped. Otherwise a smaller render with the
    output's aspect whose width is ``long_side`` for 16:9 (tests, previews).
    """
    multiple = geometry.spatial * (2 if two_stage else 1)
    width, height = output
    if long_side:
        area = long_side * long_side * 9 / 16
        aspect = width / height
        width, height = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
    return _round_up(width, multiple), _round_up(height, multiple)


def latent_frames(frames: int, geometry: Geometry = Geometry()) -> int:
    return (frames - 1) // geometry.temporal + 1


def generation_frames(frames: int, geometry: Geometry = Geometry()) -> int:
    """The smallest ``k * temporal + 1`` frame count that covers ``frames``."""
    step = geometry.temporal
    return max(1, math.ceil((frames - 1) / step)) * step + 1


def plan_stages(render: tuple[int, int], frames: int, two_stage: bool, base_steps: int,
                refine_steps: int, geometry: Geometry = Geometry()) -> list[Stage]:
    """The stages that render ``frames`` (8k+1) frames at ``render`` size."""
    width, height = render
    count = latent_frames(frames, geometry)
    if not two_stage:
        return [Stage("single", width, height, count, base_steps)]
    return [
        Stage("base", width // 2, height // 2, count, base_steps),
        Stage("upsample", width, height, count, 0),
        Stage("refine", width, height, count, refine_steps),
    ]


def keyframe_latent_index(pixel_frame: int, geometry: Geometry = Geometry()) -> int:
    """The latent frame that holds ``pixel_frame``: latent 0 is pixel 0 alone, latent k
    covers pixels ``temporal*(k-1)+1 .. temporal*k`` (the causal VAE's layout)."""
    if pixel_frame <= 0:
        return 0
    return (pixel_frame - 1) // geometry.temporal + 1


def crop_box(render: tuple[int, int], output: tuple[int, int]) -> tuple[int, int, int, int]:
    """(left, top, width, height) of the centred crop from the render to the output's
    aspect; equal to the output's size when the render covers it."""
    width, height = render
    out_w, out_h = output
    if width >= out_w and height >= out_h:
        return (width - out_w) // 2, (height - out_h) // 2, out_w, out_h
    scale = min(width / out_w, height / out_h)
    crop_w, crop_h = min(width, round(out_w * scale)), min(height, round(out_h * scale))
    return (width - crop_w) // 2, (height - crop_h) // 2, crop_w, crop_h


def _round_up(value: float, multiple: int) -> int:
    return max(multiple, math.ceil(value / multiple) * multiple)
