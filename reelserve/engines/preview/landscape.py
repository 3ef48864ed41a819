"""Painters for natural layers: sky, mountain ridges, valley, sea, dunes, fields, foreground.

Far layers are pulled toward the fog colour (aerial perspective), which is
most of what makes a few flat silhouettes read as depth.
"""

from __future__ import annotations

import cv2
import numpy as np

from reelserve.engines.preview.canvas import (
    Canvas,
    Floats,
    Layer,
    fill_below,
    flat_layer,
    fractal_line,
    mix,
    noise_field,
    scale_color,
    to_layer,
    vertical_gradient,
)
from reelserve.engines.preview.palette import Palette


def paint_sky(
    canvas: Canvas, pal: Palette, rng: np.random.Generator, cloudy: float, light_x: float,
) -> Layer:
    """The opaque backdrop: gradient, sun or moon with glow, stars, clouds."""
    w, h = canvas.size
    horizon = canvas.horizon
    t = np.clip(np.arange(h, dtype=np.float32) / max(horizon, 1.0), 0.0, 1.0) ** 1.3
    top = np.array(pal.sky_top, dtype=np.float32)
    bottom = np.array(pal.sky_horizon, dtype=np.float32)
    rgb = np.ascontiguousarray(
        np.broadcast_to((top + (bottom - top) * t[:, None])[:, None, :], (h, w, 3)),
        dtype=np.float32,
    )
    if pal.stars:
        count = int(w * h / 900)
        sx, sy = rng.integers(0, w, count), rng.integers(0, int(horizon), count)
        rgb[sy, sx] += rng.uniform(60, 200, (count, 1)).astype(np.float32)
    sun_x = canvas.x(light_x)
    sun_y = canvas.y(pal.light_height)
    if pal.glow > 0:
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        dist = np.hypot(xx - sun_x, yy - sun_y) / canvas.view_h
        glow = pal.glow * (0.55 * np.exp(-dist * 3.0) + 0.45 * np.exp(-((dist / 0.05) ** 2)))
        rgb += glow[..., None] * np.array(pal.light, dtype=np.float32)[None, None, :] * 0.6
        radius = min(canvas.view_w, canvas.view_h) * 0.045
        rgb[dist * canvas.view_h < radius] = np.array(pal.light, dtype=np.float32)
    if cloudy > 0:
        clouds = noise_field(rng, w, h, blur=canvas.view_h / 5.0)
        band = np.clip(1.0 - np.abs(np.arange(h, dtype=np.float32) / horizon - 0.45) * 1.6, 0, 1)
        cover = np.clip((clouds - (0.62 - 0.45 * cloudy)) * 3.0, 0.0, 1.0) * band[:, None]
        tint = np.array(mix(pal.sky_horizon, pal.light, 0.35), dtype=np.float32)
        shade = np.array(mix(pal.sky_top, pal.sky_horizon, 0.5), dtype=np.float32) * 0.9
        cloud_rgb = shade + (tint - shade) * (1.0 - clouds[..., None])
        rgb += (cloud_rgb - rgb) * (cover[..., None] * min(1.0, 0.5 + cloudy))
    rgb[int(horizon):] = np.array(pal.sky_horizon, dtype=np.float32)
    return to_layer(rgb, np.ones((h, w), dtype=np.float32), 0.0, "sky", soften=0)


def _ridge_layer(
    canvas: Canvas, pal: Palette, rng: np.random.Generator, *, depth: float, base: float,
    height: float, fog: float, valley: bool, snow: bool,
) -> Layer:
    w = canvas.width
    line = fractal_line(rng, w, octaves=6, base_nodes=2 + int(depth * 4))
    # Use the whole height range, and a power curve so summits are peaks, not hills.
    line = ((line - line.min()) / (float(line.max() - line.min()) + 1e-6)) ** 1.6
    ridge = canvas.y(base) - line * height * canvas.view_h
    if valley:
        # A V opening in the middle: both sides rise toward the edges.
        xs = np.linspace(-1.0, 1.0, w, dtype=np.float32)
        ridge -= (np.abs(xs) ** 1.4) * height * canvas.view_h * 1.1
        ridge += height * canvas.view_h * 0.35
    alpha = fill_below(canvas, ridge)
    color = mix(mix(pal.land_near, pal.land_far, 1.0 - depth), pal.fog, fog)
    top = scale_color(mix(color, pal.light, 0.18), 1.08)
    rgb = vertical_gradient(canvas.height, w, top, scale_color(color, 0.85))
    if snow:
        rows = np.arange(canvas.height, dtype=np.float32)[:, None]
        peak, foot = float(ridge.min()), float(ridge.max())
        # A ragged snowline across the upper part of the range: only the summits are white.
        snowline = peak + 0.4 * (foot - peak) + fractal_line(rng, w, 6) * canvas.view_h * 0.06
        cap = np.clip((snowline[None, :] - rows) / 3.0, 0.0, 1.0)
        rgb += (np.array((236, 240, 248), np.float32) - rgb) * (cap[..., None] * 0.8)
    return to_layer(rgb, alpha, 0.08 + depth * 0.3, f"ridge{depth:.1f}")


def paint_mountains(
    canvas: Canvas, pal: Palette, rng: np.random.Generator, *, valley: bool, snow: bool,
) -> list[Layer]:
    """Three ridges, far to near, each closer to the land colour than the last."""
    specs = ((0.0, 0.6, 0.4, 0.55), (0.5, 0.63, 0.26, 0.3), (1.0, 0.68, 0.15, 0.1))
    return [
        _ridge_layer(canvas, pal, rng, depth=d, base=base, height=ht, fog=fog, valley=valley,
                     snow=snow and d < 0.6)
        for d, base, ht, fog in specs
    ]


def paint_sea(canvas: Canvas, pal: Palette, rng: np.random.Generator, light_x: float) -> Layer:
    """Water from the horizon down: sky reflection, glitter under the light, swell lines."""
    w, h = canvas.size
    horizon = int(canvas.horizon)
    deep = scale_color(mix(pal.sky_top, (10, 40, 60), 0.4), 0.7)
    rgb = vertical_gradient(h, w, pal.sky_horizon, deep)
    rows = np.arange(h, dtype=np.float32)
    depth = np.clip((rows - horizon) / max(h - horizon, 1), 0.0, 1.0).astype(np.float32)
    rgb = pal_blend_rows(rgb, depth)
    swell = noise_field(rng, w, max(8, h // 6), blur=6.0)
    swell = np.asarray(cv2.resize(swell, (w, h), interpolation=cv2.INTER_LINEAR), np.float32)
    rgb *= (0.88 + 0.2 * swell)[..., None]
    if pal.glow > 0 and pal.light_height < 0.62:
        cx = canvas.x(light_x)
        xs = np.arange(w, dtype=np.float32)
        column = np.exp(-(((xs - cx) / (canvas.view_w * 0.07)) ** 2))
        # Glitter is short horizontal dashes: noise stretched sideways, thresholded high.
        dashes = rng.random((h, max(4, w // 12)), dtype=np.float32)
        dashes = np.asarray(cv2.resize(dashes, (w, h), interpolation=cv2.INTER_LINEAR), np.float32)
        glitter = (dashes > 0.8).astype(np.float32) * column[None, :] * pal.glow
        rgb += glitter[..., None] * np.array(pal.light, np.float32) * 0.5
    alpha = (rows >= horizon).astype(np.float32)[:, None] * np.ones((1, w), np.float32)
    return to_layer(rgb, alpha, 0.3, "sea", soften=0.5)


def pal_blend_rows(rgb: Floats, depth: Floats) -> Floats:
    """Darken water toward the viewer the way a grazing reflection fades."""
    return (rgb * (1.0 - 0.35 * depth[:, None, None])).astype(np.float32)


def paint_dunes(canvas: Canvas, pal: Palette, rng: np.random.Generator) -> list[Layer]:
    """Smooth sand ridges lit from the light's side."""
    sand = mix((214, 170, 110), pal.light, 0.2)
    layers = []
    rows = np.arange(canvas.height, dtype=np.float32)[:, None]
    for depth, base, height in ((0.0, 0.62, 0.16), (0.5, 0.74, 0.16), (1.0, 0.88, 0.14)):
        line = fractal_line(rng, canvas.width, octaves=3, base_nodes=2)
        ridge = canvas.y(base) - (line * 0.5 + 0.5) * height * canvas.view_h
        color = mix(mix(sand, pal.land_near, 0.5 - 0.35 * depth), pal.fog, 0.4 * (1 - depth))
        rgb = vertical_gradient(canvas.height, canvas.width, scale_color(color, 0.95),
                                scale_color(color, 0.6))
        # A lit crest and the slope facing the light brighter: what makes sand read as dunes.
        slope = np.gradient(ridge).astype(np.float32)
        facing = np.clip(0.5 - slope * 0.6, 0.0, 1.0)[None, :]
        crest = np.exp(-np.clip(rows - ridge[None, :], 0, None) / (canvas.view_h * 0.03))
        rgb *= (0.8 + 0.45 * facing * crest + 0.15 * facing)[..., None]
        alpha = fill_below(canvas, ridge)
        layers.append(to_layer(rgb, alpha, 0.15 + 0.55 * depth, f"dune{depth:.1f}", soften=1.5))
    return layers


def paint_field(canvas: Canvas, pal: Palette, rng: np.random.Generator) -> Layer:
    """A grassy plain from the horizon down, with a mottled texture."""
    w, h = canvas.size
    grass = mix((92, 128, 60), pal.land_near, 0.5)
    far = mix(grass, pal.fog, 0.45)
    rgb = vertical_gradient(h, w, far, scale_color(grass, 0.8))
    mottle = noise_field(rng, w, h, blur=canvas.view_h / 30.0)
    rgb *= (0.85 + 0.3 * mottle)[..., None]
    line = fractal_line(rng, w, octaves=3) * canvas.view_h * 0.015
    alpha = fill_below(canvas, canvas.horizon + 2.0 + line)
    return to_layer(rgb, alpha, 0.35, "field")


def paint_ground(canvas: Canvas, pal: Palette, rng: np.random.Generator) -> Layer:
    """The near foreground lip: dark rocks and grass tufts that sell the parallax."""
    w = canvas.width
    line = fractal_line(rng, w, octaves=7, base_nodes=3)
    ridge = canvas.y(0.9) - (line * 0.5 + 0.5) * canvas.view_h * 0.1
    tufts = rng.random(w).astype(np.float32)
    spikes = np.where(tufts > 0.93, rng.uniform(0, canvas.view_h * 0.05, w), 0.0)
    ridge = ridge - cv2.GaussianBlur(spikes.astype(np.float32)[None, :], (0, 0), 1.2)[0]
    alpha = fill_below(canvas, ridge)
    color = scale_color(mix(pal.land_near, (0, 0, 0), 0.45), 1.0)
    return flat_layer(canvas, color, alpha, 0.95, "ground")
