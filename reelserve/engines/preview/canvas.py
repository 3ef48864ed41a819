"""Layer canvases and the small drawing primitives the painters share.

Every layer is an RGBA image larger than the view (so camera moves never show
its edge) with a *nearness* from 0 (sky) to 1 (foreground) that sets its
parallax. Painters work in canvas pixels but place things in view fractions
through ``Canvas.x`` / ``Canvas.y`` so compositions hold for every aspect ratio.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from reelserve.engines.preview.palette import Color

Rgba = npt.NDArray[np.uint8]
Floats = npt.NDArray[np.float32]
MARGIN = 1.45
HORIZON = 0.6  # where the horizon sits, as a fraction of the view height


@dataclass(frozen=True)
class Layer:
    """One painted plane of the scene."""

    rgba: Rgba
    nearness: float
    name: str = ""
    anchor: tuple[float, float] | None = None  # a point that effects follow, canvas pixels


@dataclass(frozen=True)
class Canvas:
    """Geometry shared by all layers of one shot."""

    view_w: int
    view_h: int

    @property
    def width(self) -> int:
        return int(self.view_w * MARGIN)

    @property
    def height(self) -> int:
        return int(self.view_h * MARGIN)

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    def x(self, fraction: float) -> float:
        """Canvas column of a view fraction (0 left edge, 1 right edge)."""
        return (self.width - self.view_w) / 2.0 + fraction * self.view_w

    def y(self, fraction: float) -> float:
        """Canvas row of a view fraction (0 top edge, 1 bottom edge)."""
        return (self.height - self.view_h) / 2.0 + fraction * self.view_h

    @property
    def horizon(self) -> float:
        return self.y(HORIZON)

    def blank(self) -> Rgba:
        return np.zeros((self.height, self.width, 4), dtype=np.uint8)


def mix(a: Color, b: Color, t: float) -> Color:
    """Linear blend of two colours, ``t`` = 0 gives ``a``."""
    t = min(max(t, 0.0), 1.0)
    return (
        round(a[0] + (b[0] - a[0]) * t),
        round(a[1] + (b[1] - a[1]) * t),
        round(a[2] + (b[2] - a[2]) * t),
    )


def scale_color(c: Color, k: float) -> Color:
    return (min(255, round(c[0] * k)), min(255, round(c[1] * k)), min(255, round(c[2] * k)))


def fractal_line(
    rng: np.random.Generator, length: int, octaves: int = 5, base_nodes: int = 3,
) -> Floats:
    """A 1-D value-noise curve in about -1..1, smooth at large scale, rough at small."""
    xs = np.linspace(0.0, 1.0, length, dtype=np.float32)
    total = np.zeros(length, dtype=np.float32)
    amp, norm = 1.0, 0.0
    for octave in range(octaves):
        nodes = base_nodes * 2**octave + 1
        values = rng.uniform(-1.0, 1.0, nodes).astype(np.float32)
        grid = np.linspace(0.0, 1.0, nodes, dtype=np.float32)
        total += amp * np.interp(xs, grid, values).astype(np.float32)
        norm += amp
        amp *= 0.5
    return total / norm


def noise_field(rng: np.random.Generator, width: int, height: int, blur: float) -> Floats:
    """Blurred white noise normalised to 0..1: clouds, fog banks, textures."""
    small_w, small_h = max(4, int(width / blur * 2)), max(4, int(height / blur * 2))
    base = rng.random((small_h, small_w), dtype=np.float32)
    # Blurred on the coarse grid, then enlarged: the same soft field as blurring at full
    # size by ``blur / 2``, without a kernel hundreds of pixels wide (the fog's was 270).
    sigma = blur / 2.0
    coarse = cv2.GaussianBlur(base, (0, 0), sigmaX=sigma * small_w / width,
                              sigmaY=sigma * small_h / height)
    field = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    lo, hi = float(field.min()), float(field.max())
    return ((field - lo) / (hi - lo + 1e-6)).astype(np.float32)


def vertical_gradient(height: int, width: int, top: Color, bottom: Color) -> Floats:
    """An (h, w, 3) float32 image blending ``top`` into ``bottom``."""
    t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    a = np.array(top, dtype=np.float32)[None, None, :]
    b = np.array(bottom, dtype=np.float32)[None, None, :]
    column = a + (b - a) * t
    return np.ascontiguousarray(np.broadcast_to(column, (height, width, 3)), dtype=np.float32)


def fill_below(canvas: Canvas, ridge: Floats) -> Floats:
    """A 0/1 mask of every canvas pixel below the per-column ``ridge`` row."""
    rows = np.arange(canvas.height, dtype=np.float32)[:, None]
    return (rows >= ridge[None, :]).astype(np.float32)


def to_layer(
    rgb: Floats, alpha: Floats, nearness: float, name: str, soften: float = 0.8,
) -> Layer:
    """Pack float RGB and a 0..1 alpha into a layer, anti-aliasing the alpha edge."""
    if soften > 0:
        alpha = np.asarray(cv2.GaussianBlur(alpha, (0, 0), sigmaX=soften), dtype=np.float32)
    rgba = np.empty((*rgb.shape[:2], 4), dtype=np.uint8)
    rgba[..., :3] = np.clip(rgb, 0, 255).astype(np.uint8)
    rgba[..., 3] = np.clip(alpha * 255.0, 0, 255).astype(np.uint8)
    return Layer(rgba, nearness, name)


def flat_layer(canvas: Canvas, color: Color, alpha: Floats, nearness: float, name: str) -> Layer:
    """A single-colour shape layer."""
    rgb = np.empty((canvas.height, canvas.width, 3), dtype=np.float32)
    rgb[...] = np.array(color, dtype=np.float32)
    return to_layer(rgb, alpha, nearness, name)
