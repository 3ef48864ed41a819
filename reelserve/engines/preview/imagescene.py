"""Image to video without a model: the start image moved by a camera and a fake depth.

The first frame is the start image itself (cover-cropped to the output aspect);
later frames warp it with ``cv2.remap`` where each pixel shifts and scales in
proportion to a pseudo-depth map, which is enough to read as parallax. The
warp maps are computed at a quarter of the output size and upscaled, because
they are smooth and this keeps a 1080p frame within a few milliseconds.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

from reelserve.engines.preview.camera import CameraMove, CameraPose, pose_at

Rgb = npt.NDArray[np.uint8]
FloatMap = npt.NDArray[np.float32]
MAP_DIVISOR = 4


def cover_crop(
    image: Image.Image, size: tuple[int, int], zoom: float = 1.0,
    focus: tuple[float, float] = (0.5, 0.5),
) -> Rgb:
    """Scale ``image`` to cover ``size`` (width, height) and crop around ``focus``.

    ``zoom`` > 1 crops tighter (a closer shot of the same picture); ``focus``
    is where the crop centre sits, as fractions of the image.
    """
    width, height = size
    rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    ih, iw = rgb.shape[:2]
    scale = max(width / iw, height / ih) * max(zoom, 1.0)
    # Crop in source pixels first so the resize only touches what is kept.
    cw = min(iw, max(1, round(width / scale)))
    ch = min(ih, max(1, round(height / scale)))
    x0 = min(max(round(focus[0] * iw - cw / 2), 0), iw - cw)
    y0 = min(max(round(focus[1] * ih - ch / 2), 0), ih - ch)
    crop = rgb[y0:y0 + ch, x0:x0 + cw]
    interp = cv2.INTER_AREA if cw > width else cv2.INTER_CUBIC
    out = cv2.resize(crop, (width, height), interpolation=interp)
    return np.ascontiguousarray(out, dtype=np.uint8)


def pseudo_depth(rgb: Rgb) -> FloatMap:
    """A smooth 0 (far) .. 1 (near) map guessed from layout and detail.

    Lower rows are usually nearer (ground), and sharp detail usually belongs to
    the subject in focus; both are weak cues, blurred so the warp never tears.
    """
    h, w = rgb.shape[:2]
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    grad = np.abs(cv2.Laplacian(gray, cv2.CV_32F, ksize=3))
    detail = np.asarray(cv2.GaussianBlur(grad, (0, 0), sigmaX=max(w, h) / 18.0), np.float32)
    detail /= float(detail.max()) + 1e-6
    rows = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None] ** 1.5
    depth = 0.55 * np.broadcast_to(rows, (h, w)) + 0.45 * detail
    depth = cv2.GaussianBlur(depth.astype(np.float32), (0, 0), sigmaX=max(w, h) / 30.0)
    lo, hi = float(depth.min()), float(depth.max())
    return ((depth - lo) / (hi - lo + 1e-6)).astype(np.float32)


def _relative(pose: CameraPose, start: CameraPose) -> CameraPose:
    return CameraPose(
        zoom=pose.zoom / start.zoom,
        pan_x=pose.pan_x - start.pan_x,
        pan_y=pose.pan_y - start.pan_y,
        truck_x=pose.truck_x - start.truck_x,
        truck_y=pose.truck_y - start.truck_y,
        roll=pose.roll - start.roll,
    )


class ImageMotionShot:
    """Frames of one shot that starts on ``image`` and moves with ``move``."""

    def __init__(
        self, image: Rgb, move: CameraMove, frame_count: int, fps: int, strength: float = 1.0,
    ) -> None:
        self.image = image
        self.move = move
        self.frame_count = frame_count
        self.seconds = frame_count / fps
        self.strength = strength
        h, w = image.shape[:2]
        quarter = (w // MAP_DIVISOR, h // MAP_DIVISOR)
        small = np.asarray(cv2.resize(image, quarter, interpolation=cv2.INTER_AREA), np.uint8)
        self._depth = pseudo_depth(small)
        sh, sw = self._depth.shape
        xs = (np.arange(sw, dtype=np.float32) + 0.5) * MAP_DIVISOR - w / 2.0
        ys = (np.arange(sh, dtype=np.float32) + 0.5) * MAP_DIVISOR - h / 2.0
        self._gx, self._gy = np.meshgrid(xs, ys)
        self._start = pose_at(move, 0.0, self.seconds)

    def render(self, index: int) -> Rgb:
        """Frame ``index`` of the shot, at the image's own size."""
        if index == 0:
            return self.image
        t = index / max(self.frame_count - 1, 1)
        pose = _relative(pose_at(self.move, t, self.seconds), self._start)
        map_x, map_y = self._maps(pose)
        border = cv2.BORDER_REFLECT_101
        out = cv2.remap(self.image, map_x, map_y, cv2.INTER_LINEAR, borderMode=border)
        return np.asarray(out, dtype=np.uint8)

    def _maps(self, pose: CameraPose) -> tuple[FloatMap, FloatMap]:
        h, w = self.image.shape[:2]
        k = self.strength
        near = self._depth
        # Enough extra zoom that the largest shift never reveals an edge
        # (except a pull-back, which has nothing to reveal and reflects instead).
        shift = abs(pose.pan_x) + abs(pose.truck_x) + abs(pose.pan_y) + abs(pose.truck_y)
        cover = 1.0 + k * (2.2 * shift + abs(math.radians(pose.roll)) * 0.9)
        zoom = (1.0 + k * (pose.zoom - 1.0)) * cover
        scale = (zoom ** (0.45 + 0.9 * near)).astype(np.float32)
        dx = -k * (pose.pan_x + pose.truck_x * near) * w
        dy = k * (pose.pan_y + pose.truck_y * near) * h
        angle = math.radians(pose.roll) * k
        cos_a, sin_a = math.cos(angle), math.sin(angle)
        vx, vy = self._gx - dx, self._gy - dy
        src_x = (cos_a * vx + sin_a * vy) / scale + w / 2.0
        src_y = (-sin_a * vx + cos_a * vy) / scale + h / 2.0
        full = (w, h)
        map_x = cv2.resize(src_x.astype(np.float32), full, interpolation=cv2.INTER_LINEAR)
        map_y = cv2.resize(src_y.astype(np.float32), full, interpolation=cv2.INTER_LINEAR)
        return map_x, map_y
