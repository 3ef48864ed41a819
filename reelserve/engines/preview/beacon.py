"""A lighthouse's turning beam, seen from the side, over the composed frame.

The lamp turns once every ``PERIOD_S``: the beam sweeps out to one side, swings
through the lantern toward the viewer (a flash) and out to the other side. It is
one pre-drawn soft wedge, stretched and flipped by a 2x3 affine each frame and
added where the lantern is in the view, so it follows the camera's parallax.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import numpy.typing as npt

from reelserve.engines.preview.camera import CameraPose, layer_matrix
from reelserve.engines.preview.canvas import Layer

Rgb = npt.NDArray[np.uint8]
PERIOD_S = 4.0
BEAM_COLOUR = np.array((255, 240, 196), np.float32)


def _wedge(length: int, spread: int) -> Rgb:
    """A beam pointing right from (0, spread): bright at the lamp, fading with distance."""
    mask = np.zeros((2 * spread + 1, length), np.float32)
    cv2.fillPoly(mask, [np.array([(0, spread - 1), (length, 0), (length, 2 * spread),
                                  (0, spread + 1)], np.int32)], 1.0, cv2.LINE_AA)
    fade = np.linspace(1.0, 0.15, length, dtype=np.float32)[None, :]
    soft = cv2.GaussianBlur(mask * fade, (0, 0), sigmaX=max(1.0, spread / 6.0))
    return np.asarray(np.clip(soft[..., None] * BEAM_COLOUR * 0.55, 0, 255), dtype=np.uint8)


class Beacon:
    """The beam of the lantern at ``layer.anchor`` (canvas pixels)."""

    def __init__(self, layer: Layer, canvas_size: tuple[int, int], view_size: tuple[int, int],
                 phase: float) -> None:
        assert layer.anchor is not None
        self.anchor = layer.anchor
        self.nearness = layer.nearness
        self.canvas_size, self.view_size = canvas_size, view_size
        w, h = view_size
        self.spread = max(3, h // 14)
        self.beam = _wedge(int(w * 0.9), self.spread)
        self.flare = max(2, h // 60)
        self.phase = phase

    def apply(self, out: Rgb, seconds: float, pose: CameraPose) -> None:
        """Add the beam at time ``seconds`` to ``out`` (h, w, 3 uint8) in place."""
        matrix = layer_matrix(pose, self.nearness, self.canvas_size, self.view_size)
        lx, ly = matrix @ np.array([self.anchor[0], self.anchor[1], 1.0])
        turn = 2.0 * math.pi * (seconds / PERIOD_S + self.phase)
        reach = math.cos(turn)  # > 0 sweeping right, < 0 left, 0 pointing at or away from us
        if abs(reach) > 0.02:
            place = np.array([[reach, 0.0, lx], [0.0, 1.0, ly - self.spread]])
            beam = cv2.warpAffine(self.beam, place, self.view_size, flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            cv2.add(out, beam, dst=out)
        toward = max(0.0, math.sin(turn)) ** 6  # the flash when the lamp faces the viewer
        if toward > 0.05:
            colour = tuple(float(c) for c in BEAM_COLOUR)
            cv2.circle(out, (int(lx), int(ly)), int(self.flare * (1 + 3 * toward)), colour, -1,
                       cv2.LINE_AA)
