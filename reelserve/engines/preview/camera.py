"""Camera moves as smooth per-frame poses, and the per-layer affine they imply.

A pose separates a *rotation* of the camera (``pan``: every layer shifts by
the same amount) from a *translation* (``truck``: a layer shifts in proportion
to its nearness), which is what produces parallax between layers. Zoom acts
more on near layers than far ones, so a push-in reads as a dolly, not a crop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

CAMERA_MOVES = (
    "push_in", "pull_back", "pan", "tilt", "orbit", "crane", "static", "handheld", "truck",
)
FAR_ZOOM = 0.0  # how much of the zoom reaches layers at infinity


@dataclass(frozen=True)
class CameraMove:
    """Which move a shot uses and the seed-chosen details of it."""

    kind: str = "push_in"
    direction: int = 1  # +1 right/up/clockwise, -1 the other way
    speed: float = 1.0  # 1.0 is a slow, deliberate move over the whole shot
    phase: float = 0.0  # seeds the handheld wobble


@dataclass(frozen=True)
class CameraPose:
    """Where the camera is at one instant, in fractions of the view size."""

    zoom: float = 1.0
    pan_x: float = 0.0
    pan_y: float = 0.0
    truck_x: float = 0.0
    truck_y: float = 0.0
    roll: float = 0.0  # degrees


def _ease(t: float) -> float:
    # Mostly linear with softened ends: a dolly that starts and lands gently.
    t = min(max(t, 0.0), 1.0)
    return 0.6 * t + 0.4 * (0.5 - 0.5 * math.cos(math.pi * t))


def _wobble(t: float, phase: float, rate: float) -> float:
    # Sum of incommensurate sines: smooth, deterministic, never periodic within a shot.
    return (
        math.sin(2.1 * rate * t + phase)
        + 0.6 * math.sin(3.7 * rate * t + 1.7 * phase)
        + 0.3 * math.sin(7.3 * rate * t + 2.9 * phase)
    ) / 1.9


def pose_at(move: CameraMove, t: float, seconds: float) -> CameraPose:
    """The pose at progress ``t`` (0..1) through a shot lasting ``seconds``."""
    u = _ease(t)
    s = move.speed
    d = move.direction
    kind = move.kind
    if kind == "pull_back":
        return CameraPose(zoom=1.0 + 0.28 * s * (1.0 - u))
    if kind == "pan":
        return CameraPose(zoom=1.04, pan_x=d * 0.09 * s * (u - 0.5), truck_x=d * 0.03 * s * u)
    if kind == "tilt":
        return CameraPose(zoom=1.04, pan_y=d * 0.08 * s * (u - 0.5))
    if kind == "orbit":
        swing = d * 0.16 * s * (u - 0.5)
        # Panning against the truck keeps a mid-depth pivot still: the orbit look.
        return CameraPose(zoom=1.06, pan_x=-0.5 * swing, truck_x=swing, roll=-d * 1.2 * s * u)
    if kind == "crane":
        return CameraPose(zoom=1.0 + 0.06 * u, truck_y=d * 0.14 * s * u, pan_y=-d * 0.02 * u)
    if kind == "truck":
        return CameraPose(zoom=1.04, truck_x=d * 0.14 * s * (u - 0.5))
    if kind == "static":
        return CameraPose(zoom=1.0 + 0.012 * u)
    if kind == "handheld":
        time_s = t * seconds
        return CameraPose(
            zoom=1.04 + 0.03 * u,
            pan_x=0.006 * _wobble(time_s, move.phase, 1.0),
            pan_y=0.006 * _wobble(time_s, move.phase + 2.0, 1.2),
            roll=0.5 * _wobble(time_s, move.phase + 4.0, 0.8),
        )
    return CameraPose(zoom=1.0 + 0.22 * s * u)


def layer_matrix(
    pose: CameraPose,
    nearness: float,
    layer_size: tuple[int, int],
    view_size: tuple[int, int],
) -> npt.NDArray[np.float64]:
    """The 2x3 affine taking a layer canvas (centred on the view) into the view.

    ``nearness`` is 0 for the sky at infinity and 1 for the nearest foreground.
    """
    lw, lh = layer_size
    vw, vh = view_size
    scale = pose.zoom ** (FAR_ZOOM + 1.0 * nearness)
    dx = -(pose.pan_x + pose.truck_x * nearness) * vw
    dy = (pose.pan_y + pose.truck_y * nearness) * vh
    angle = math.radians(pose.roll)
    cos_a, sin_a = math.cos(angle) * scale, math.sin(angle) * scale
    cx, cy = lw / 2.0, lh / 2.0
    tx = vw / 2.0 + dx - (cos_a * cx - sin_a * cy)
    ty = vh / 2.0 + dy - (sin_a * cx + cos_a * cy)
    return np.array([[cos_a, -sin_a, tx], [sin_a, cos_a, ty]], dtype=np.float64)
