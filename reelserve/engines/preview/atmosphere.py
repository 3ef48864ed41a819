"""Per-frame atmosphere over the composited layers: fog, rain, snow, dust, fireflies,
light shafts, birds and water shimmer.

Each effect is a texture made once per shot and only scrolled (``np.roll``) or
re-weighted per frame, so motion is continuous and costs a few array ops.
Textures also shift against the camera pan so particles sit in the scene.
Textures are stored in uint8, already multiplied by their colour and strength,
so a frame applies each effect with one or two saturating OpenCV passes.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import numpy.typing as npt

from reelserve.engines.preview.camera import CameraPose
from reelserve.engines.preview.canvas import HORIZON, noise_field
from reelserve.engines.preview.palette import palette_named
from reelserve.engines.preview.spec import SceneSpec

Image = npt.NDArray[np.float32]
Rgb = npt.NDArray[np.uint8]
INV_255 = 1.0 / 255.0
FOG_DRIFT = 0.01  # view widths a second the fog bank drifts


Points = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64] | float]
UNUSED: Rgb = np.zeros((0, 0), np.uint8)  # the texture of an effect the shot does not show


def _scatter(rng: np.random.Generator, w: int, h: int, count: int, weighted: bool) -> Points:
    """Random (row, column, weight) points; drawn for every texture, used or not, so the
    generator's stream, and with it every later texture, stays the same."""
    # The weights are drawn first, as ``dots[rows, cols] = rng.uniform(...)`` drew them.
    weights = rng.uniform(0.4, 1.0, count) if weighted else 1.0
    return rng.integers(0, h, count), rng.integers(0, w, count), weights


def _streaks(points: Points, w: int, h: int, length: int) -> Image:
    dots = np.zeros((h, w), np.float32)
    dots[points[0], points[1]] = points[2]
    kernel = np.zeros((length, length), np.float32)
    for k in range(length):  # a slanted line: rain falls with the wind
        kernel[k, min(length - 1, int(k * 0.25))] = 1.0
    streaks = cv2.filter2D(dots, -1, kernel)
    # Softened: crisp one-pixel streaks upscaled 3x are costly for the encoder and look harsh.
    return np.asarray(cv2.GaussianBlur(streaks, (0, 0), 0.7), dtype=np.float32)


def _dots(points: Points, w: int, h: int, sigma: float) -> Image:
    dots = np.zeros((h, w), np.float32)
    dots[points[0], points[1]] = points[2]
    blurred = cv2.GaussianBlur(dots, (0, 0), sigmaX=sigma)
    return np.asarray(blurred / (float(blurred.max()) + 1e-6), dtype=np.float32)


def _u8(values: npt.NDArray[np.floating]) -> Rgb:
    return np.asarray(np.clip(np.rint(values), 0, 255), dtype=np.uint8)


def _as_rgb(gray: Rgb) -> Rgb:
    return np.asarray(cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB), dtype=np.uint8)


def _blend_toward(out: Rgb, inverse: Rgb, colour: Rgb) -> None:
    """``out = out * inverse / 255 + colour`` in place: "over" with premultiplied colour."""
    cv2.multiply(out, inverse, dst=out, scale=INV_255)
    cv2.add(out, colour, dst=out)


class Atmosphere:
    """The effects a ``SceneSpec`` asks for, ready to apply frame by frame."""

    def __init__(self, spec: SceneSpec, view_size: tuple[int, int], rng: np.random.Generator):
        w, h = view_size
        self.w, self.h = w, h
        self.effects = set(spec.atmosphere) | {s for s in spec.subjects if s == "birds"}
        if "sea" in spec.environments:
            self.effects.add("shimmer")
        pal = palette_named(spec.palette)
        self.fog_color = np.array(pal.fog, np.float32)
        self.light = np.array(pal.light, np.float32)
        self.light_pos = (w * spec.light_x, h * min(pal.light_height, 0.55))
        rows = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
        # Fog pools around the horizon and thins toward the top of the sky.
        profile = np.clip(1.0 - np.abs(rows - HORIZON) * 1.6, 0.1, 1.0) ** 1.5
        fog_alpha = 0.08 + 0.5 * noise_field(rng, 2 * w, h, blur=h / 4.0) * profile
        self.fog_inverse = _as_rgb(_u8(255.0 * (1.0 - fog_alpha)))
        self.fog_colour = _u8(fog_alpha[..., None] * self.fog_color)
        rain_at = _scatter(rng, w, h, w * h // 400, weighted=False)
        snow_at = (_scatter(rng, w, h, w * h // 700, weighted=True),
                   _scatter(rng, w, h, w * h // 500, weighted=True))
        dust_at = _scatter(rng, w, h, w * h // 900, weighted=True)
        rays = noise_field(rng, 720, 1, blur=6.0)[0]
        count = 24
        self.flies = rng.uniform(0.0, 1.0, (count, 4)).astype(np.float32)
        self.birds = rng.uniform(0.0, 1.0, (7, 2)).astype(np.float32)
        # Only the textures this shot shows are made: the shot waits for them.
        used = self.effects
        self.rain = (_u8(_streaks(rain_at, w, h, length=max(5, h // 24)) * 110.0)
                     if "rain" in used else UNUSED)
        self.snow_alpha, self.snow_colour = UNUSED, UNUSED
        if "snow" in used:
            snow = np.maximum(_dots(snow_at[0], w, h, 0.9),
                              0.6 * _dots(snow_at[1], w, h, 0.6)) * 0.9
            self.snow_alpha = _u8(snow * 255.0)
            self.snow_colour = _u8(snow * 250.0)
        self.dust = (_u8(_dots(dust_at, w, h, 0.8)[..., None] * (self.light * 0.8))
                     if "dust" in used else UNUSED)
        self.shafts = (_u8(self._shafts(rays)[..., None] * (self.light * 0.3))
                       if "shafts" in used else UNUSED)

    def _shafts(self, rays: Image) -> Image:
        yy, xx = np.mgrid[0:self.h, 0:self.w].astype(np.float32)
        lx, ly = self.light_pos
        angle = np.arctan2(yy - ly, xx - lx)
        index = ((angle + math.pi) / (2 * math.pi) * 719).astype(np.int32)
        dist = np.hypot(xx - lx, yy - ly) / self.h
        # Rays fan downward from the light; upward ones would look like a starburst.
        below = np.clip((yy - ly) / (self.h * 0.25), 0.0, 1.0)
        shafts = np.clip(rays[index] - 0.5, 0.0, 1.0) * 1.6 * np.exp(-dist * 1.4) * below
        return np.asarray(cv2.GaussianBlur(shafts, (0, 0), 2.0), dtype=np.float32)

    def apply(self, out: Rgb, t: float, seconds: float, pose: CameraPose) -> None:
        """Add every effect to ``out`` (h, w, 3 uint8) in place."""
        shift = int(-(pose.pan_x + 0.5 * pose.truck_x) * self.w)
        effects = self.effects
        if "fog" in effects:
            start = int(seconds * self.w * FOG_DRIFT + shift) % self.w
            _blend_toward(out, self.fog_inverse[:, start:start + self.w],
                          self.fog_colour[:, start:start + self.w])
        if "shafts" in effects:
            pulse = 0.75 + 0.25 * math.sin(seconds * 0.9)
            cv2.scaleAdd(self.shafts, pulse, out, dst=out)
        if "shimmer" in effects:
            self._shimmer(out, seconds, pose)
        if "rain" in effects:
            moved = np.roll(self.rain, (int(seconds * self.h * 1.1), shift), axis=(0, 1))
            cv2.add(out, _as_rgb(moved), dst=out)
        if "snow" in effects:
            sway = int(math.sin(seconds * 0.8) * self.w * 0.01) + shift
            fall = (int(seconds * self.h * 0.12), sway)
            inverse = np.asarray(cv2.bitwise_not(np.roll(self.snow_alpha, fall, axis=(0, 1))),
                                 dtype=np.uint8)
            _blend_toward(out, _as_rgb(inverse),
                          _as_rgb(np.roll(self.snow_colour, fall, axis=(0, 1))))
        if "dust" in effects:
            moved = np.roll(self.dust, (-int(seconds * self.h * 0.02), shift + int(seconds * 6)),
                            axis=(0, 1))
            cv2.add(out, moved, dst=out)
        if "fireflies" in effects:
            self._fireflies(out, seconds)
        if "birds" in effects:
            self._birds(out, t)

    def _shimmer(self, out: Rgb, seconds: float, pose: CameraPose) -> None:
        top = int(self.h * (HORIZON + pose.pan_y)) + 2
        if top >= self.h:
            return
        rows = np.arange(top, self.h, dtype=np.float32)
        depth = (rows - top) / max(self.h - top, 1)
        wave = 1.0 + 0.07 * np.sin(rows * (0.9 - 0.6 * depth) - seconds * 3.0) * (0.3 + depth)
        water = out[top:].reshape(self.h - top, self.w * 3)
        gain = np.repeat(wave.astype(np.float32)[:, None], self.w * 3, axis=1)
        cv2.multiply(water, gain, dst=water, dtype=cv2.CV_8U)

    def _fireflies(self, out: Rgb, seconds: float) -> None:
        glow = np.zeros((self.h, self.w), np.float32)
        for x0, y0, phase, speed in self.flies:
            x = (x0 + 0.04 * math.sin(seconds * (0.5 + speed) + phase * 6.3)) * self.w
            y = (0.45 + 0.5 * y0 + 0.03 * math.cos(seconds * (0.7 + speed) + phase * 9)) * self.h
            blink = 0.5 + 0.5 * math.sin(seconds * (1.5 + 2 * speed) + phase * 20)
            cv2.circle(glow, (int(x), int(y)), max(1, self.h // 180), float(blink), -1)
        glow = cv2.GaussianBlur(glow, (0, 0), sigmaX=max(1.0, self.h / 150.0)) * 3.0
        cv2.add(out, _u8(glow[..., None] * np.array((230, 255, 140), np.float32)), dst=out)

    def _birds(self, out: Rgb, t: float) -> None:
        color = tuple(int(c) for c in self.fog_color * 0.15)
        size = max(2, self.h // 70)
        for k, (dx, dy) in enumerate(self.birds):
            x = int(((t * 0.6 + dx * 0.25 + k * 0.03) % 1.2 - 0.1) * self.w)
            y = int((0.18 + 0.15 * dy) * self.h + math.sin(t * 20 + k) * 2)
            flap = size if (int(t * 40) + k) % 2 else -size // 2
            pts = np.array([(x - size, y - flap), (x, y), (x + size, y - flap)], np.int32)
            cv2.polylines(out, [pts], False, color, 1, cv2.LINE_AA)
