"""Stack a shot's layers into one frame in uint8, touching only the rows each layer covers.

Layers are stored premultiplied (colour already scaled by alpha), so "over" is
``out = layer + out * (255 - alpha) / 255``: two saturating uint8 passes that
OpenCV runs with SIMD, instead of float blends over every pixel. Linear warps
of premultiplied colour also keep soft edges free of dark fringes. A layer that
covers only the lower part of its canvas (ridges, fields, the ground) is warped
and blended only over the rows of the view it can reach, and not at all below
the row where a nearer layer becomes solid (it would be painted over there);
a narrow one (a figure, a boat) only over the columns it can reach. A layer
whose affine is the same as in the previous frame (the sky during a push-in, every
layer when the camera holds still) is not warped again.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from reelserve.engines.preview.camera import CameraPose, layer_matrix
from reelserve.engines.preview.canvas import Layer

Rgb = npt.NDArray[np.uint8]
Rgba = npt.NDArray[np.uint8]
Matrix = npt.NDArray[np.float64]
INV_255 = 1.0 / 255.0
EDGE = 2  # rows of slack around a layer's reach, for the linear filter's footprint


@dataclass(frozen=True)
class PreparedLayer:
    """A layer ready to composite: premultiplied RGBA and the canvas box it paints."""

    premultiplied: Rgba
    nearness: float
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 of alpha > 0, canvas pixels
    opaque: bool
    solid_from: int | None  # the canvas row from which every row down is fully opaque


def prepare(layer: Layer) -> PreparedLayer:
    """Premultiply ``layer`` once per shot and find the box it paints."""
    rgba = layer.rgba
    alpha = rgba[..., 3]
    # One pass over all four channels; alpha * 255 / 255 leaves the alpha itself.
    gains = cv2.merge((alpha, alpha, alpha, np.full_like(alpha, 255)))
    premultiplied = np.asarray(cv2.multiply(rgba, gains, scale=INV_255), dtype=np.uint8)
    see_through = np.flatnonzero(alpha.min(axis=1) < 255)
    if see_through.size == 0:
        solid_from: int | None = 0
    elif see_through[-1] + 1 < alpha.shape[0]:
        solid_from = int(see_through[-1]) + 1
    else:
        solid_from = None
    rows = np.flatnonzero(alpha.any(axis=1))
    cols = np.flatnonzero(alpha.any(axis=0))
    if rows.size == 0:
        box = (0.0, 0.0, 0.0, 0.0)
    else:
        box = (float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1))
    return PreparedLayer(premultiplied, layer.nearness, box, bool(alpha.min() == 255),
                         solid_from)


class Compositor:
    """Composes prepared layers (far to near) through a camera pose into a view."""

    def __init__(
        self, layers: list[Layer], canvas_size: tuple[int, int], view_size: tuple[int, int],
    ) -> None:
        self.layers = [prepare(layer) for layer in layers]
        self.canvas_size = canvas_size
        self.view_size = view_size
        w, h = view_size
        self._inverse = np.empty(h * w * 3, np.uint8)
        self._colour = np.empty(h * w * 3, np.uint8)
        # Per layer: a buffer its warps are written into (no array is allocated per
        # frame, which fragmented the heap as the shot went on), and the affine and
        # view box of the warp it holds.
        self._warp_buffers = [np.empty(h * w * 4, np.uint8) for _ in self.layers]
        self._last_warp: list[tuple[bytes, Rgba] | None] = [None] * len(self.layers)

    def compose(self, pose: CameraPose) -> Rgb:
        """A fresh (h, w, 3) uint8 frame of every layer seen from ``pose``."""
        w, h = self.view_size
        out = np.zeros((h, w, 3), np.uint8)
        matrices = [layer_matrix(pose, layer.nearness, self.canvas_size, self.view_size)
                    for layer in self.layers]
        hidden_below = h  # rows from here down are covered by a solid nearer layer
        bands = []
        for layer, matrix in zip(reversed(self.layers), reversed(matrices), strict=True):
            top, bottom = self._rows_reached(layer, matrix)
            bands.append((top, min(bottom, hidden_below)))
            hidden_below = min(hidden_below, self._solid_below(layer, matrix))
        for index, (matrix, (top, bottom)) in enumerate(zip(matrices, reversed(bands),
                                                            strict=True)):
            if bottom > top:
                self._draw(index, matrix, out, top, bottom)
        return out

    def _solid_below(self, layer: PreparedLayer, matrix: Matrix) -> int:
        """The first view row from which ``layer`` covers everything below."""
        if layer.solid_from is None:
            return self.view_size[1]
        # Both ends of the canvas row where the solid part starts; +1 for the filter.
        ends = np.array([[0.0, layer.solid_from, 1.0], [self.canvas_size[0], layer.solid_from,
                                                          1.0]])
        return max(0, int(np.ceil((ends @ matrix[1]).max())) + 1)

    def _rows_reached(self, layer: PreparedLayer, matrix: Matrix) -> tuple[int, int]:
        x0, y0, x1, y1 = layer.box
        corners = np.array([[x0, y0, 1.0], [x1, y0, 1.0], [x0, y1, 1.0], [x1, y1, 1.0]])
        ys = corners @ matrix[1]
        h = self.view_size[1]
        # Paint that reaches a canvas edge is replicated beyond it, so it reaches the view's.
        top = 0 if y0 <= 0 else max(0, int(np.floor(ys.min())) - EDGE)
        bottom = h if y1 >= self.canvas_size[1] else min(h, int(np.ceil(ys.max())) + EDGE)
        return top, bottom

    def _columns_reached(self, layer: PreparedLayer, matrix: Matrix) -> tuple[int, int]:
        x0, y0, x1, y1 = layer.box
        corners = np.array([[x0, y0, 1.0], [x1, y0, 1.0], [x0, y1, 1.0], [x1, y1, 1.0]])
        xs = corners @ matrix[0]
        w = self.view_size[0]
        # Paint replicated beyond the top or bottom edge reaches sideways once rolled.
        if x0 <= 0 or x1 >= self.canvas_size[0] or y0 <= 0 or y1 >= self.canvas_size[1]:
            return 0, w
        return max(0, int(np.floor(xs.min())) - EDGE), min(w, int(np.ceil(xs.max())) + EDGE)

    def _warped(self, index: int, matrix: Matrix, top: int, bottom: int, left: int,
                right: int) -> Rgba:
        """Layer ``index`` warped into the view box, or its last warp if nothing moved."""
        key = matrix.tobytes() + np.array((top, bottom, left, right)).tobytes()
        last = self._last_warp[index]
        if last is not None and last[0] == key:
            return last[1]
        shifted = matrix.copy()
        shifted[0, 2] -= left
        shifted[1, 2] -= top
        band = (bottom - top, right - left, 4)
        warped = self._warp_buffers[index][:band[0] * band[1] * 4].reshape(band)
        cv2.warpAffine(self.layers[index].premultiplied, shifted, (band[1], band[0]),
                       dst=warped, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        self._last_warp[index] = (key, warped)
        return warped

    def _draw(self, index: int, matrix: Matrix, out: Rgb, top: int, bottom: int) -> None:
        """Warp layer ``index`` over view rows ``top:bottom`` and lay it over ``out`` there."""
        layer = self.layers[index]
        left, right = self._columns_reached(layer, matrix)
        if right <= left:
            return
        warped = self._warped(index, matrix, top, bottom, left, right)
        rows = out[top:bottom, left:right]
        if layer.opaque:
            cv2.cvtColor(warped, cv2.COLOR_RGBA2RGB, dst=rows)
            return
        size = rows.size
        inverse = self._inverse[:size].reshape(rows.shape)
        colour = self._colour[:size].reshape(rows.shape)
        cv2.mixChannels([warped], [inverse], [3, 0, 3, 1, 3, 2])
        cv2.bitwise_not(inverse, dst=inverse)
        cv2.mixChannels([warped], [colour], [0, 0, 1, 1, 2, 2])
        cv2.multiply(rows, inverse, dst=rows, scale=INV_255)
        cv2.add(rows, colour, dst=rows)
