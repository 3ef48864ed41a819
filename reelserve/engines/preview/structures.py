"""Painters for built and living things: forest, city, temple pillars, a lighthouse, a figure,
a boat.

All are silhouettes with a rim of the light colour: at preview scale, shape and
value carry the composition; texture would only look like noise.
"""

from __future__ import annotations

import cv2
import numpy as np

from reelserve.engines.preview.canvas import Canvas, Layer, flat_layer, mix, scale_color, to_layer
from reelserve.engines.preview.palette import Palette

NIGHT_LIKE = ("night", "neon", "blue_hour")


def _poly_mask(canvas: Canvas, polygons: list[np.ndarray]) -> np.ndarray:
    mask = np.zeros((canvas.height, canvas.width), dtype=np.uint8)
    # One call per shape: a single fillPoly call fills overlaps even-odd, punching holes.
    for polygon in polygons:
        cv2.fillPoly(mask, [polygon.astype(np.int32)], 255, lineType=cv2.LINE_AA)
    return (mask.astype(np.float32) / 255.0).astype(np.float32)


def _conifer(x: float, y: float, height: float) -> list[np.ndarray]:
    """Three stacked triangles and a trunk: the shorthand for a pine at any size."""
    half = height * 0.24
    shapes = [np.array([(x - half * 0.12, y), (x + half * 0.12, y),
                        (x + half * 0.12, y - height * 0.2), (x - half * 0.12, y - height * 0.2)])]
    for tier in range(3):
        top = y - height * (1.0 - tier * 0.24)
        bottom = y - height * (0.5 - tier * 0.2)
        width = half * (0.55 + 0.25 * tier)
        shapes.append(np.array([(x, top), (x + width, bottom), (x - width, bottom)]))
    return shapes


def paint_forest(canvas: Canvas, pal: Palette, rng: np.random.Generator) -> list[Layer]:
    """Two rows of conifers: a hazy far treeline and a dark near one."""
    layers = []
    # Tree counts follow the canvas width so a portrait frame is not a thicket.
    widths = canvas.view_w / (canvas.view_h * 16 / 9)
    for depth, base, size, count in ((0.0, 0.64, 0.1, 70), (1.0, 0.78, 0.26, 22)):
        count = max(4, int(count * widths))
        polygons = []
        for _ in range(count):
            x = canvas.x(float(rng.uniform(-0.25, 1.25)))
            height = canvas.view_h * size * float(rng.uniform(0.6, 1.3))
            y = canvas.y(base) + float(rng.uniform(-0.02, 0.03)) * canvas.view_h
            polygons += _conifer(x, y, height)
        ground = np.array([(0, canvas.y(base)), (canvas.width, canvas.y(base)),
                           (canvas.width, canvas.height), (0, canvas.height)])
        polygons.append(ground)
        alpha = _poly_mask(canvas, polygons)
        green = mix((28, 64, 40), pal.land_near, 0.5)
        color = mix(green, pal.fog, 0.55) if depth == 0.0 else scale_color(green, 0.7)
        layers.append(flat_layer(canvas, color, alpha, 0.35 + 0.35 * depth, f"trees{depth:.0f}"))
    return layers


def paint_city(
    canvas: Canvas, pal: Palette, rng: np.random.Generator, palette_name: str,
) -> list[Layer]:
    """A skyline in two depths; windows light up at night, signs glow under neon."""
    lit = 0.45 if palette_name in NIGHT_LIKE else 0.08
    layers = []
    for depth in (0.0, 1.0):
        rgb = np.empty((canvas.height, canvas.width, 3), dtype=np.float32)
        # Concrete greys tinted by the light: land colours would paint a green city by day.
        concrete = mix((96, 100, 112), pal.land_near, 0.8 if palette_name in NIGHT_LIKE else 0.35)
        body = mix(mix(concrete, pal.land_far, 0.5), pal.fog, 0.4) if depth == 0 else concrete
        rgb[...] = np.array(body, np.float32)
        alpha = np.zeros((canvas.height, canvas.width), np.float32)
        x = canvas.x(-0.2)
        base = int(canvas.y(0.62 + 0.16 * depth))
        while x < canvas.x(1.2):
            bw = int(canvas.view_w * rng.uniform(0.04, 0.09) * (1 + depth))
            bh = int(canvas.view_h * rng.uniform(0.12, 0.42) * (1 + 0.4 * depth))
            x0, top = int(x), max(0, base - bh)
            alpha[top:, x0:x0 + bw] = 1.0
            _windows(rgb, rng, (x0, top, bw, base - top), pal, lit, depth)
            if palette_name == "neon" and rng.random() < 0.35:
                sign = (255, 40, 190) if rng.random() < 0.5 else (40, 240, 255)
                sy = top + int((base - top) * rng.uniform(0.1, 0.5))
                rgb[sy:sy + max(2, bh // 14), x0 + 2:x0 + bw - 2] = np.array(sign, np.float32)
            x += bw + canvas.view_w * rng.uniform(0.0, 0.015)
        alpha[base:] = 1.0
        layers.append(to_layer(rgb, alpha, 0.3 + 0.35 * depth, f"city{depth:.0f}", soften=0.5))
    return layers


def _windows(
    rgb: np.ndarray, rng: np.random.Generator, box: tuple[int, int, int, int], pal: Palette,
    lit: float, depth: float,
) -> None:
    x0, top, bw, bh = box
    step = max(3, int(4 + 3 * depth))
    height, width = rgb.shape[:2]
    rows = np.arange(top + step, min(top + bh - step, height - step), step)
    cols = np.arange(max(0, x0 + 2), min(x0 + bw - 2, width - 1), step)
    if rows.size == 0 or cols.size == 0:
        return
    on = rng.random((rows.size, cols.size)) < lit
    ry, cx = np.nonzero(on)
    color = np.array(pal.windows, np.float32) * (0.7 + 0.3 * depth)
    for dy in range(max(1, step // 3)):
        rgb[rows[ry] + dy, cols[cx]] = color


def paint_temple(
    canvas: Canvas, pal: Palette, rng: np.random.Generator, *, roofed: bool,
) -> Layer:
    """A row of columns on steps; a pediment when it is a temple, broken heights when ruins."""
    stone = mix((206, 196, 178), pal.light, 0.25)
    stone = mix(stone, pal.land_far, 0.35)
    count = int(rng.integers(5, 9))
    left, right = canvas.x(float(rng.uniform(0.12, 0.3))), canvas.x(float(rng.uniform(0.7, 0.88)))
    base = canvas.y(0.74)
    height = canvas.view_h * 0.3
    polygons = [np.array([(left - 12, base), (right + 12, base), (right + 20, base + 12),
                          (left - 20, base + 12)])]
    col_w = (right - left) / (count * 2.0)
    for k in range(count):
        cx = left + (right - left) * (k + 0.5) / count
        h = height if roofed else height * float(rng.uniform(0.45, 1.0))
        polygons.append(np.array([(cx - col_w / 2, base), (cx + col_w / 2, base),
                                  (cx + col_w / 2, base - h), (cx - col_w / 2, base - h)]))
        polygons.append(np.array([(cx - col_w * 0.75, base - h), (cx + col_w * 0.75, base - h),
                                  (cx + col_w * 0.75, base - h - 6), (cx - col_w * 0.75,
                                                                       base - h - 6)]))
    if roofed:
        roof = base - height - 6
        polygons.append(np.array([(left - 14, roof), (right + 14, roof), (right + 14, roof - 10),
                                  ((left + right) / 2, roof - height * 0.3), (left - 14,
                                                                              roof - 10)]))
    alpha = _poly_mask(canvas, polygons)
    rgb = np.empty((canvas.height, canvas.width, 3), np.float32)
    xs = np.linspace(0.0, 1.0, canvas.width, dtype=np.float32)
    # Light from one side: columns read as round when one edge is brighter.
    shade = 0.75 + 0.35 * (0.5 + 0.5 * np.sin(xs * canvas.width / max(col_w, 1.0) * 1.57))
    rgb[...] = np.array(stone, np.float32)[None, None, :]
    rgb *= shade[None, :, None]
    return to_layer(rgb, alpha, 0.55, "temple")


def paint_figure(canvas: Canvas, pal: Palette, rng: np.random.Generator) -> Layer:
    """A standing human silhouette on a third of the frame: head, coat, arms, legs."""
    cx = canvas.x(float(rng.choice([0.34, 0.64])))
    feet = canvas.y(0.88)
    h = canvas.view_h * 0.28
    mask = np.zeros((canvas.height, canvas.width), np.uint8)

    def pt(dx: float, dy: float) -> tuple[int, int]:
        return int(cx + dx * h), int(feet - dy * h)

    # A long coat reads as a person at any size; legs and arms as thick strokes.
    coat = np.array([pt(-0.09, 0.8), pt(0.09, 0.8), pt(0.12, 0.38), pt(-0.12, 0.38)], np.int32)
    cv2.fillPoly(mask, [coat], 255, cv2.LINE_AA)
    limb = max(2, int(h * 0.055))
    stance = float(rng.uniform(0.02, 0.06))
    cv2.line(mask, pt(-0.04, 0.42), pt(-0.04 - stance, 0.0), 255, limb, cv2.LINE_AA)
    cv2.line(mask, pt(0.04, 0.42), pt(0.04 + stance, 0.0), 255, limb, cv2.LINE_AA)
    cv2.line(mask, pt(-0.085, 0.77), pt(-0.13, 0.47), 255, int(limb * 0.8), cv2.LINE_AA)
    cv2.line(mask, pt(0.085, 0.77), pt(0.13, 0.47), 255, int(limb * 0.8), cv2.LINE_AA)
    cv2.line(mask, pt(0.0, 0.8), pt(0.0, 0.86), 255, int(limb * 0.9), cv2.LINE_AA)
    cv2.ellipse(mask, pt(0.0, 0.92), (int(h * 0.055), int(h * 0.07)), 0, 0, 360, 255, -1,
                cv2.LINE_AA)
    alpha = mask.astype(np.float32) / 255.0
    color = scale_color(mix(pal.land_near, (0, 0, 0), 0.55), 1.0)
    return flat_layer(canvas, color, alpha, 0.75, "figure")


def paint_boat(canvas: Canvas, pal: Palette, rng: np.random.Generator) -> Layer:
    """A small sailboat sitting on the water below the horizon."""
    cx = canvas.x(float(rng.uniform(0.2, 0.8)))
    y = canvas.horizon + canvas.view_h * 0.06
    s = canvas.view_h * 0.08
    hull = np.array([(cx - s, y - s * 0.15), (cx + s, y - s * 0.15), (cx + s * 0.7, y),
                     (cx - s * 0.7, y)])
    sail = np.array([(cx - s * 0.05, y - s * 0.2), (cx - s * 0.05, y - s * 1.4),
                     (cx + s * 0.6, y - s * 0.25)])
    alpha = _poly_mask(canvas, [hull, sail])
    return flat_layer(canvas, scale_color(pal.land_near, 0.8), alpha, 0.4, "boat")


def paint_lighthouse(
    canvas: Canvas, pal: Palette, rng: np.random.Generator, *, dark: bool,
) -> Layer:
    """A banded tower with its lantern on a rocky headland at one side of the view.

    ``dark`` (night-like light) dims the tower and lights the lantern. The layer's
    ``anchor`` is the lantern, where the beam (``beacon.py``) starts.
    """
    side = float(rng.choice([0.22, 0.76])) + float(rng.uniform(-0.04, 0.04))
    cx, foot = canvas.x(side), canvas.y(0.64)
    h = canvas.view_h * 0.34
    w = canvas.width
    # The headland: a rocky mass highest under the tower, falling to the water either side.
    xs = np.arange(w, dtype=np.float32)
    reach = canvas.view_w * 0.22
    hump = np.clip(1.0 - np.abs(xs - cx) / reach, 0.0, 1.0) ** 0.7
    rock = foot - hump * canvas.view_h * 0.12 + np.abs(rng.normal(0, 1.0, w)).astype(
        np.float32) * hump * canvas.view_h * 0.006
    base = float(rock[int(np.clip(cx, 0, w - 1))]) + 1.0
    rows = np.arange(canvas.height, dtype=np.float32)[:, None]
    land = ((rows >= rock[None, :]) & (hump[None, :] > 0)).astype(np.float32)
    tower = np.zeros((canvas.height, canvas.width), np.uint8)
    bands = np.zeros_like(tower)

    def pt(dx: float, dy: float) -> tuple[float, float]:
        return cx + dx * h, base - dy * h

    body = np.array([pt(-0.075, 0.0), pt(0.075, 0.0), pt(0.05, 0.78), pt(-0.05, 0.78)])
    cv2.fillPoly(tower, [body.astype(np.int32)], 255, cv2.LINE_AA)
    for low, high in ((0.2, 0.34), (0.5, 0.64)):  # two painted bands around the tower
        half_low, half_high = 0.075 - 0.025 * low / 0.78, 0.075 - 0.025 * high / 0.78
        band = np.array([pt(-half_low, low), pt(half_low, low), pt(half_high, high),
                         pt(-half_high, high)])
        cv2.fillPoly(bands, [band.astype(np.int32)], 255, cv2.LINE_AA)
    gallery = np.array([pt(-0.075, 0.78), pt(0.075, 0.78), pt(0.075, 0.81), pt(-0.075, 0.81)])
    cap = np.array([pt(-0.055, 0.93), pt(0.055, 0.93), pt(0.0, 1.02)])
    cv2.fillPoly(tower, [gallery.astype(np.int32), cap.astype(np.int32)], 255, cv2.LINE_AA)
    lantern = np.zeros_like(tower)
    room = np.array([pt(-0.04, 0.81), pt(0.04, 0.81), pt(0.04, 0.93), pt(-0.04, 0.93)])
    cv2.fillPoly(lantern, [room.astype(np.int32)], 255, cv2.LINE_AA)
    white = scale_color(mix((240, 238, 230), pal.light, 0.2), 0.42 if dark else 1.0)
    red = scale_color((176, 38, 36), 0.5 if dark else 1.0)
    rock_rgb = mix(pal.land_near, (0, 0, 0), 0.35)
    rgb = np.empty((canvas.height, canvas.width, 3), np.float32)
    rgb[...] = np.array(rock_rgb, np.float32)
    shade = np.clip((np.arange(canvas.width, dtype=np.float32) - cx) / (h * 0.075), -1, 1)
    lit = (1.0 - 0.25 * (shade if canvas.x(0.5) > cx else -shade))[None, :, None]
    rgb = np.where(tower[..., None] > 0, np.array(white, np.float32) * lit, rgb)
    rgb = np.where(bands[..., None] > 0, np.array(red, np.float32) * lit, rgb)
    glass = (255, 244, 200) if dark else mix(pal.windows, (210, 220, 225), 0.6)
    rgb = np.where(lantern[..., None] > 0, np.array(glass, np.float32), rgb)
    shape = np.maximum(np.maximum(tower, lantern), (land * 255).astype(np.uint8))
    alpha = shape.astype(np.float32) / 255.0
    layer = to_layer(rgb.astype(np.float32), alpha, 0.45, "lighthouse", soften=0.5)
    return Layer(layer.rgba, layer.nearness, layer.name, anchor=pt(0.0, 0.87))
