"""Start-to-end image morph guided by optical flow, and a shot played backwards.

Flow is measured both ways with OpenCV's DIS at about 480 px wide (fast, and
large structures are what the eye follows), then upscaled. Frame ``t`` warps
the start image forward and the end image backward along the flow and blends
them, so shapes travel instead of merely fading: a morph, not a cross-fade.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from reelserve.engines.preview.imagescene import Rgb
from reelserve.engines.preview.shots import ShotRenderer

FLOW_WIDTH = 480
Flow = npt.NDArray[np.float32]


def _flow_pair(start: Rgb, end: Rgb) -> tuple[Flow, Flow]:
    """(start->end, end->start) flows at full resolution, in full-resolution pixels."""
    h, w = start.shape[:2]
    small = (FLOW_WIDTH, max(8, round(FLOW_WIDTH * h / w)))
    g0 = cv2.cvtColor(cv2.resize(start, small, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
    g1 = cv2.cvtColor(cv2.resize(end, small, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
    dis = cv2.DISOpticalFlow.create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    empty = np.zeros((small[1], small[0], 2), np.float32)
    forward = np.asarray(dis.calc(g0, g1, empty.copy()), np.float32)
    backward = np.asarray(dis.calc(g1, g0, empty), np.float32)
    scale = np.array([w / small[0], h / small[1]], np.float32)

    def full(flow: Flow) -> Flow:
        smooth = cv2.GaussianBlur(flow, (0, 0), sigmaX=2.0)  # DIS is blocky; warps should not be
        big = cv2.resize(smooth, (w, h), interpolation=cv2.INTER_LINEAR)
        return np.asarray(big * scale, dtype=np.float32)

    return full(forward), full(backward)


class MorphShot:
    """Frames that begin exactly on ``start`` and end exactly on ``end``."""

    def __init__(self, start: Rgb, end: Rgb, frame_count: int) -> None:
        if start.shape != end.shape:
            raise ValueError(f"morph images differ in shape: {start.shape} vs {end.shape}")
        self.start, self.end = start, end
        self.frame_count = frame_count
        h, w = start.shape[:2]
        self._forward, self._backward = _flow_pair(start, end)
        self._gx, self._gy = np.meshgrid(np.arange(w, dtype=np.float32),
                                         np.arange(h, dtype=np.float32))

    def render(self, index: int) -> Rgb:
        last = self.frame_count - 1
        if index <= 0:
            return self.start
        if index >= last:
            return self.end
        t = index / last
        # I_t(x) ~ I0(x + t*F10(x)) and I1(x + (1-t)*F01(x)): linear motion along the flow.
        back, fore = self._backward, self._forward
        from_start = cv2.remap(
            self.start, self._gx + t * back[..., 0], self._gy + t * back[..., 1],
            cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101,
        )
        s = 1.0 - t
        from_end = cv2.remap(
            self.end, self._gx + s * fore[..., 0], self._gy + s * fore[..., 1],
            cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101,
        )
        weight = t * t * (3.0 - 2.0 * t)
        return np.asarray(cv2.addWeighted(from_start, 1.0 - weight, from_end, weight, 0.0),
                          dtype=np.uint8)


class ReversedShot:
    """Another shot played backwards, so its first frame becomes this shot's last."""

    def __init__(self, inner: ShotRenderer, frame_count: int) -> None:
        self.inner = inner
        self.frame_count = frame_count

    def render(self, index: int) -> Rgb:
        return self.inner.render(self.frame_count - 1 - index)
