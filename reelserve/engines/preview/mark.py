"""The small "PREVIEW" mark in the corner of every frame, drawn at output resolution.

Frames reach the encoder as I420 planes, so the mark is blended there: it is
white text on a dim black plate, and greys have neutral chroma, so blending luma
toward the grey's luma and chroma toward 128 gives what blending in RGB would.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

Planes = npt.NDArray[np.uint8]
Floats = npt.NDArray[np.float32]
# BT.601 limited range, the encoder's matrix: black and white luma, neutral chroma.
LUMA_BLACK, LUMA_WHITE, CHROMA_NEUTRAL = 16.0, 235.0, 128.0


class PreviewMark:
    """A pre-rendered translucent label, blended into the bottom-right corner."""

    def __init__(self, size: tuple[int, int], text: str = "PREVIEW") -> None:
        width, height = size
        scale = min(width, height) / 1080.0 * 0.9
        thick = max(1, round(2 * scale))
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        pad = max(4, round(10 * scale))
        # Even sizes and positions, so the mark covers whole 2x2 chroma samples.
        self.h, self.w = _even(th + base + 2 * pad), _even(tw + 2 * pad)
        mask = np.zeros((self.h, self.w), np.uint8)
        cv2.putText(mask, text, (pad, pad + th), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, thick,
                    cv2.LINE_AA)
        box = np.full((self.h, self.w), 0.35, np.float32)  # a dim plate keeps it legible
        self.alpha: Floats = np.maximum(box, mask.astype(np.float32) / 255.0)
        self.luma: Floats = np.where(mask > 0, LUMA_WHITE, LUMA_BLACK).astype(np.float32)
        self.chroma_alpha: Floats = np.asarray(
            cv2.resize(self.alpha, (self.w // 2, self.h // 2), interpolation=cv2.INTER_AREA),
            dtype=np.float32)
        margin = max(6, round(24 * scale))
        self.x0, self.y0 = _even(width - self.w - margin), _even(height - self.h - margin)
        self.width, self.height = width, height

    def stamp(self, planes: Planes) -> None:
        """Blend the mark into an I420 frame (``(height * 3 // 2, width)``) in place."""
        y = planes[:self.height].reshape(self.height, self.width)
        _blend(y[self.y0:self.y0 + self.h, self.x0:self.x0 + self.w], self.luma, self.alpha)
        quarter = self.height // 2 * self.width // 2
        chroma = planes[self.height:].reshape(-1)
        for plane in (chroma[:quarter], chroma[quarter:]):
            grid = plane.reshape(self.height // 2, self.width // 2)
            cy, cx = self.y0 // 2, self.x0 // 2
            _blend(grid[cy:cy + self.h // 2, cx:cx + self.w // 2], CHROMA_NEUTRAL,
                   self.chroma_alpha)


def _blend(region: Planes, value: Floats | float, alpha: Floats) -> None:
    mixed = region.astype(np.float32)
    mixed += (value - mixed) * alpha
    region[...] = np.rint(mixed).astype(np.uint8)


def _even(n: int) -> int:
    return n // 2 * 2
