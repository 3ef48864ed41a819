"""Keyframes at exact pixel frames, as Lightricks' ``VideoConditionByKeyframeIndex`` places them.

diffusers 0.42.1's ``LTX2ConditionPipeline`` reads a condition's ``index`` as a
*latent* frame and puts a keyframe at pixel frame ``8*(index-1)+1``: the last
latent of a 121-frame clip lands on pixel 113, not 120. Lightricks' own code takes
the pixel frame. ``KeyframedPipeline`` keeps the pipeline and changes only that:
a ``PixelCondition`` names its pixel frame, its latent index is derived from it
(``recipe.keyframe_latent_index``), and its position coordinates start at that
exact pixel frame. Frame 0 is the first-frame condition, as before.

Imported only inside the engine child (torch and diffusers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from diffusers import LTX2ConditionPipeline
from diffusers.pipelines.ltx2.pipeline_ltx2_condition import LTX2VideoCondition

from reelserve.engines.ltx2.recipe import Geometry, keyframe_latent_index

# diffusers' classes, seen by mypy as untyped bases.
_Condition: Any = LTX2VideoCondition
_Pipeline: Any = LTX2ConditionPipeline


@dataclass
class PixelCondition(_Condition):  # type: ignore[misc]
    """An image pinned to ``pixel_frame`` of the generated clip; ``crf`` 0: no re-encode."""

    pixel_frame: int = 0


class KeyframedPipeline(_Pipeline):  # type: ignore[misc]
    """``LTX2ConditionPipeline`` whose keyframes sit at exact pixel frames."""

    _pending_pixel_frames: list[int | None]

    def geometry(self) -> Geometry:
        return Geometry(self.vae_spatial_compression_ratio, self.vae_temporal_compression_ratio)

    def prepare_latents(self, conditions: Any = None, *args: Any, **kwargs: Any) -> Any:
        listed = [] if conditions is None else (
            conditions if isinstance(conditions, list) else [conditions])
        geometry = self.geometry()
        for condition in listed:
            if isinstance(condition, PixelCondition):
                condition.index = keyframe_latent_index(condition.pixel_frame, geometry)
        # The parent appends keyframe tokens in condition order, calling
        # _prepare_keyframe_coords once per non-first-frame condition; a plain
        # condition keeps the parent's own placement (None).
        self._pending_pixel_frames = [
            c.pixel_frame if isinstance(c, PixelCondition) else None
            for c in listed if c.index != 0]
        try:
            return super().prepare_latents(listed or None, *args, **kwargs)
        finally:
            self._pending_pixel_frames = []

    def _prepare_keyframe_coords(self, keyframe_latent_num_frames: int,
                                 keyframe_latent_height: int, keyframe_latent_width: int,
                                 pixel_frame_idx: int, num_pixel_frames: int, fps: float,
                                 device: Any) -> Any:
        pending = getattr(self, "_pending_pixel_frames", [])
        exact = pending.pop(0) if pending else None
        if exact is None:
            exact = pixel_frame_idx
        return super()._prepare_keyframe_coords(
            keyframe_latent_num_frames, keyframe_latent_height, keyframe_latent_width,
            exact, num_pixel_frames, fps, device)
