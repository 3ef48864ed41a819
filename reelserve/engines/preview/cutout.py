"""``@ElementN`` cut-outs: the element's frontal image, separated from its backdrop,
walking through the shot.

Background removal is a guess, not segmentation: when the image border is one
flat colour (a product shot, a studio portrait), pixels far from that colour
are kept; otherwise a soft oval keeps the centre. Either reads as "this element
is here" in a storyboard.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

from reelserve.engines.preview.shots import ShotRenderer

Rgb = npt.NDArray[np.uint8]
Floats = npt.NDArray[np.float32]
FLAT_BORDER = 28.0  # colour spread (0..441) under which a border counts as one backdrop


def cut_out(image: Image.Image) -> tuple[Rgb, Floats]:
    """(rgb, alpha 0..1) of the element, cropped to what is kept."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    h, w = rgb.shape[:2]
    band = max(2, min(h, w) // 25)
    border = np.concatenate([rgb[:band].reshape(-1, 3), rgb[-band:].reshape(-1, 3),
                             rgb[:, :band].reshape(-1, 3), rgb[:, -band:].reshape(-1, 3)])
    backdrop = np.median(border, axis=0).astype(np.float32)
    spread = float(np.percentile(np.linalg.norm(border - backdrop, axis=1), 90))
    if spread < FLAT_BORDER:
        distance = np.linalg.norm(rgb.astype(np.float32) - backdrop, axis=2)
        alpha = np.clip((distance - FLAT_BORDER - spread) / 40.0, 0.0, 1.0).astype(np.float32)
        alpha = cv2.morphologyEx(alpha, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    else:
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        r = np.hypot((xx / w - 0.5) / 0.46, (yy / h - 0.5) / 0.48)
        alpha = np.clip((1.0 - r) * 6.0, 0.0, 1.0).astype(np.float32)
    alpha = cv2.GaussianBlur(alpha, (0, 0), sigmaX=1.0)
    ys, xs = np.nonzero(alpha > 0.05)
    if ys.size == 0:
        return rgb, np.ones((h, w), np.float32)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    return rgb[y0:y1, x0:x1], np.asarray(alpha[y0:y1, x0:x1], dtype=np.float32)


class ElementWalk:
    """One cut-out moving along a seed-chosen path across the frame."""

    def __init__(
        self, image: Image.Image, frame_size: tuple[int, int], frame_count: int,
        rng: np.random.Generator, slot: int, leaves: bool,
    ) -> None:
        rgb, alpha = cut_out(image)
        width, height = frame_size
        target_h = int(height * float(rng.uniform(0.38, 0.5)))
        scale = min(target_h / rgb.shape[0], width * 0.4 / rgb.shape[1])
        size = (max(2, int(rgb.shape[1] * scale)), max(2, int(rgb.shape[0] * scale)))
        self.rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA).astype(np.float32)
        self.alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_LINEAR)[..., None]
        self.frame_size = frame_size
        self.frame_count = frame_count
        side = 1 if (slot + int(rng.integers(2))) % 2 else -1
        self.enter = 0.5 - side * (0.5 + size[0] / width * 0.6)
        self.rest = 0.5 + side * (0.18 * slot - 0.12 + float(rng.uniform(-0.05, 0.05)))
        self.exit = 1.0 - self.enter if leaves else self.rest
        self.ground = 0.93 - 0.04 * slot
        self.phase = float(rng.uniform(0, 6.28))

    def _centre_x(self, t: float) -> float:
        if t < 0.5:
            u = t / 0.5
            return self.enter + (self.rest - self.enter) * (1 - (1 - u) ** 2)
        u = (t - 0.5) / 0.5
        return self.rest + (self.exit - self.rest) * u * u

    def draw(self, frame: Rgb, index: int) -> None:
        """Composite the cut-out into ``frame`` (in place) at frame ``index``."""
        t = index / max(self.frame_count - 1, 1)
        width, height = self.frame_size
        eh, ew = self.rgb.shape[:2]
        bob = abs(np.sin(index * 0.35 + self.phase)) * eh * 0.02  # a walking bounce
        x0 = int(self._centre_x(t) * width - ew / 2)
        y0 = int(self.ground * height - eh - bob)
        fx0, fy0 = max(0, x0), max(0, y0)
        fx1, fy1 = min(width, x0 + ew), min(height, y0 + eh)
        if fx1 <= fx0 or fy1 <= fy0:
            return
        src = (slice(fy0 - y0, fy1 - y0), slice(fx0 - x0, fx1 - x0))
        region = frame[fy0:fy1, fx0:fx1].astype(np.float32)
        region += (self.rgb[src] - region) * self.alpha[src]
        frame[fy0:fy1, fx0:fx1] = region.astype(np.uint8)


class ElementShot:
    """A shot with element cut-outs drawn over it."""

    def __init__(self, inner: ShotRenderer, walks: list[ElementWalk]) -> None:
        self.inner = inner
        self.walks = walks

    def render(self, index: int) -> Rgb:
        # Copy: the inner shot may hand back a cached image (its first frame).
        frame = np.array(self.inner.render(index), dtype=np.uint8)
        for walk in self.walks:
            walk.draw(frame, index)
        return frame
