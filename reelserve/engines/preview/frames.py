"""Rendered RGB frames to what the encoder takes: I420 planes at output size, marked.

Text scenes are composed at a third of the output size. Converting to I420
there and upscaling the three planes costs a fraction of upscaling RGB and
converting at full size (a 1080p RGB frame is 6 MB, its I420 planes 3 MB, and
the colour conversion runs on a ninth of the pixels). Linear upscaling commutes
with the linear colour matrix, so the picture is the same up to rounding.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from reelserve.engines.preview.mark import PreviewMark
from reelserve.media.encode import rgb_to_i420

Rgb = npt.NDArray[np.uint8]
Planes = npt.NDArray[np.uint8]


def i420_planes(planes: Planes, width: int, height: int) -> tuple[Planes, Planes, Planes]:
    """Views of the Y, U and V planes of an I420 frame."""
    quarter = (height // 2) * (width // 2)
    chroma = planes[height:].reshape(-1)
    return (planes[:height], chroma[:quarter].reshape(height // 2, width // 2),
            chroma[quarter:].reshape(height // 2, width // 2))


class OutputFrames:
    """Turns each rendered frame into a fresh, marked I420 frame at ``size``."""

    def __init__(self, size: tuple[int, int]) -> None:
        self.width, self.height = size
        self.mark = PreviewMark(size)

    def convert(self, rgb: Rgb) -> Planes:
        height, width = rgb.shape[:2]
        if (width, height) == (self.width, self.height):
            planes = rgb_to_i420(rgb)
        else:
            planes = self._upscaled(rgb_to_i420(rgb), width, height)
        self.mark.stamp(planes)
        return planes

    def _upscaled(self, small: Planes, width: int, height: int) -> Planes:
        planes = np.empty((self.height * 3 // 2, self.width), np.uint8)
        sources = i420_planes(small, width, height)
        targets = i420_planes(planes, self.width, self.height)
        for source, target in zip(sources, targets, strict=True):
            cv2.resize(source, (target.shape[1], target.shape[0]), dst=target,
                       interpolation=cv2.INTER_LINEAR)
        return planes
