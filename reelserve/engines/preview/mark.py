"""The small "PREVIEW" mark in the corner of every frame, drawn at output resolution."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

Rgb = npt.NDArray[np.uint8]


class PreviewMark:
    """A pre-rendered translucent label, blended into the bottom-right corner."""

    def __init__(self, size: tuple[int, int], text: str = "PREVIEW") -> None:
        width, height = size
        scale = min(width, height) / 1080.0 * 0.9
        thick = max(1, round(2 * scale))
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        pad = max(4, round(10 * scale))
        self.h, self.w = th + base + 2 * pad, tw + 2 * pad
        mask = np.zeros((self.h, self.w), np.uint8)
        cv2.putText(mask, text, (pad, pad + th), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, thick,
                    cv2.LINE_AA)
        box = np.full((self.h, self.w), 0.35, np.float32)  # a dim plate keeps it legible
        self.alpha = np.maximum(box, mask.astype(np.float32) / 255.0)[..., None]
        self.color = np.where(mask[..., None] > 0, 255.0, 0.0).astype(np.float32)
        margin = max(6, round(24 * scale))
        self.x0, self.y0 = width - self.w - margin, height - self.h - margin

    def stamp(self, frame: Rgb) -> None:
        """Blend the mark into ``frame`` in place."""
        region = frame[self.y0:self.y0 + self.h, self.x0:self.x0 + self.w].astype(np.float32)
        region += (self.color - region) * self.alpha
        frame[self.y0:self.y0 + self.h, self.x0:self.x0 + self.w] = region.astype(np.uint8)
