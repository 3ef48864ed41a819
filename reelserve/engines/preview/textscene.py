"""Text to video: paint a shot's layers once, then move a camera through them per frame.

Painting is the slow part and happens once per shot; each frame is only one
``cv2.warpAffine`` per layer over the rows it covers, a uint8 "over" blend, and
the atmosphere pass, all at the small working resolution the engine upscales from.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from reelserve.engines.preview.atmosphere import Atmosphere
from reelserve.engines.preview.beacon import Beacon
from reelserve.engines.preview.camera import CameraPose, pose_at
from reelserve.engines.preview.canvas import Canvas, Layer
from reelserve.engines.preview.compositor import Compositor
from reelserve.engines.preview.landscape import (
    paint_dunes,
    paint_field,
    paint_ground,
    paint_mountains,
    paint_sea,
    paint_sky,
)
from reelserve.engines.preview.palette import palette_named
from reelserve.engines.preview.spec import SceneSpec
from reelserve.engines.preview.structures import (
    paint_boat,
    paint_city,
    paint_figure,
    paint_forest,
    paint_lighthouse,
    paint_temple,
)

Rgb = npt.NDArray[np.uint8]
TERRAIN = {"mountains", "valley", "desert", "field", "forest", "city", "sea"}
DARK = {"night", "neon", "blue_hour", "storm"}  # light under which a lighthouse's lamp is lit
CLOUDINESS = {"overcast": 0.9, "storm": 1.0, "day": 0.35, "golden_hour": 0.4, "sunset": 0.5,
              "dawn": 0.4, "blue_hour": 0.2, "night": 0.1, "neon": 0.0}


def paint_scene(spec: SceneSpec, canvas: Canvas, rng: np.random.Generator) -> list[Layer]:
    """All layers of the shot, sorted far to near."""
    pal = palette_named(spec.palette)
    env = set(spec.environments)
    layers = [paint_sky(canvas, pal, rng, CLOUDINESS.get(spec.palette, 0.3), spec.light_x)]
    if env & {"mountains", "valley"}:
        layers += paint_mountains(canvas, pal, rng, valley="valley" in env,
                                  snow="snow" in spec.atmosphere)
    if "desert" in env:
        layers += paint_dunes(canvas, pal, rng)
    if "sea" in env:
        layers.append(paint_sea(canvas, pal, rng, spec.light_x))
        if "boat" in spec.subjects:
            layers.append(paint_boat(canvas, pal, rng))
    # Buildings alone would float on the horizon colour: give them land to stand on.
    if "field" in env or not env & TERRAIN:
        layers.append(paint_field(canvas, pal, rng))
    if "forest" in env:
        layers += paint_forest(canvas, pal, rng)
    if "city" in env:
        layers += paint_city(canvas, pal, rng, spec.palette)
    if "temple" in env or "ruins" in env:
        layers.append(paint_temple(canvas, pal, rng, roofed="temple" in env))
    if "lighthouse" in spec.subjects:
        layers.append(paint_lighthouse(canvas, pal, rng, dark=spec.palette in DARK))
    if "figure" in spec.subjects:
        layers.append(paint_figure(canvas, pal, rng))
    # Dunes and open water bring their own foreground; everything else gets a near lip.
    if not env <= {"sea", "desert"} or "figure" in spec.subjects:
        layers.append(paint_ground(canvas, pal, rng))
    return sorted(layers, key=lambda layer: layer.nearness)


def _vignette(width: int, height: int) -> Rgb:
    """The darkening toward the corners as a per-pixel gain, 255 meaning 1."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    r = np.hypot((xx / width - 0.5) * 1.6, (yy / height - 0.5) * 1.6)
    gain = 1.0 - 0.35 * np.clip(r - 0.45, 0.0, 1.0) ** 1.5
    return np.repeat(np.rint(gain * 255.0).astype(np.uint8)[..., None], 3, axis=2)


class TextShot:
    """Frames of one text-to-video shot at the working size ``view_size``."""

    def __init__(
        self, spec: SceneSpec, view_size: tuple[int, int], frame_count: int, fps: int,
    ) -> None:
        self.spec = spec
        self.view_size = view_size
        self.frame_count = frame_count
        self.seconds = frame_count / fps
        self.canvas = Canvas(*view_size)
        rng = np.random.default_rng([spec.seed, 101])
        self.layers = paint_scene(spec, self.canvas, rng)
        self.compositor = Compositor(self.layers, self.canvas.size, view_size)
        self.atmosphere = Atmosphere(spec, view_size, np.random.default_rng([spec.seed, 202]))
        self._vignette = _vignette(*view_size)
        lamps = [layer for layer in self.layers if layer.anchor is not None]
        self.beacon = (Beacon(lamps[0], self.canvas.size, view_size, spec.light_x)
                       if lamps and spec.palette in DARK else None)

    def pose(self, index: int) -> CameraPose:
        t = index / max(self.frame_count - 1, 1)
        pose = pose_at(self.spec.camera, t, self.seconds)
        return CameraPose(pose.zoom * self.spec.framing, pose.pan_x, pose.pan_y,
                          pose.truck_x, pose.truck_y, pose.roll)

    def render(self, index: int) -> Rgb:
        """Frame ``index`` as (h, w, 3) uint8 at the working size."""
        pose = self.pose(index)
        out = self.compositor.compose(pose)
        self.atmosphere.apply(out, index / max(self.frame_count - 1, 1),
                              index * self.seconds / max(self.frame_count, 1), pose)
        if self.beacon is not None:
            self.beacon.apply(out, index * self.seconds / max(self.frame_count, 1), pose)
        cv2.multiply(out, self._vignette, dst=out, scale=1.0 / 255.0)
        return out
