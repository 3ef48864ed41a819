"""Named light moods: the colours of sky, land, fog and light for a time of day."""

from __future__ import annotations

from dataclasses import dataclass

Color = tuple[int, int, int]


@dataclass(frozen=True)
class Palette:
    """Colours (RGB) and light placement for one mood."""

    sky_top: Color
    sky_horizon: Color
    light: Color  # sun or moon disc and glow
    light_height: float  # 0 top of view .. 1 bottom; > 0.62 means below the horizon
    land_far: Color
    land_near: Color
    fog: Color
    windows: Color  # lit windows, lanterns, neon signs
    stars: bool = False
    glow: float = 1.0  # how strongly the light blooms


PALETTES: dict[str, Palette] = {
    "day": Palette((62, 122, 196), (184, 212, 236), (255, 252, 236), 0.18,
                   (122, 150, 170), (58, 92, 56), (206, 218, 232), (255, 236, 180), glow=0.6),
    "golden_hour": Palette((86, 104, 168), (255, 188, 108), (255, 214, 142), 0.46,
                           (172, 122, 104), (78, 58, 40), (244, 192, 140), (255, 200, 120)),
    "sunset": Palette((54, 44, 108), (255, 118, 66), (255, 160, 86), 0.56,
                      (124, 68, 92), (42, 28, 38), (232, 128, 108), (255, 190, 110), glow=1.3),
    "dawn": Palette((92, 112, 176), (252, 184, 172), (255, 226, 200), 0.52,
                    (152, 140, 172), (64, 62, 78), (236, 206, 214), (255, 220, 170)),
    "blue_hour": Palette((24, 36, 98), (118, 108, 170), (220, 222, 255), 0.3,
                         (70, 72, 120), (22, 24, 44), (110, 110, 160), (255, 206, 130), stars=True,
                         glow=0.5),
    "night": Palette((6, 10, 32), (30, 44, 86), (230, 236, 255), 0.16,
                     (30, 40, 66), (9, 12, 22), (48, 58, 92), (255, 210, 130), stars=True,
                     glow=0.55),
    "neon": Palette((18, 6, 40), (124, 22, 128), (255, 80, 200), 0.7,
                    (62, 22, 92), (14, 10, 30), (90, 40, 130), (60, 240, 255), stars=False,
                    glow=0.0),
    "overcast": Palette((128, 134, 146), (186, 190, 196), (238, 238, 236), 0.2,
                        (138, 146, 154), (68, 80, 74), (182, 186, 192), (255, 230, 180), glow=0.15),
    "storm": Palette((40, 46, 58), (98, 104, 116), (200, 206, 220), 0.22,
                     (72, 80, 92), (28, 34, 36), (110, 116, 126), (255, 220, 160), glow=0.1),
}

PALETTE_NAMES = tuple(PALETTES)


def palette_named(name: str) -> Palette:
    """The palette called ``name``; unknown names get daylight rather than an error."""
    return PALETTES.get(name, PALETTES["day"])
