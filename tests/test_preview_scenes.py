"""The preview engine's picture parts at small sizes: every word paints, camera parallax,
the optical-flow morph and element cut-outs."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from reelserve.engines.preview.camera import CAMERA_MOVES, CameraMove, CameraPose, layer_matrix
from reelserve.engines.preview.cutout import cut_out
from reelserve.engines.preview.morph import MorphShot
from reelserve.engines.preview.palette import PALETTE_NAMES
from reelserve.engines.preview.spec import SceneSpec
from reelserve.engines.preview.textscene import TextShot
from reelserve.engines.preview.vocabulary import ATMOSPHERE_WORDS, ENVIRONMENT_WORDS

Rgb = npt.NDArray[np.uint8]
SMALL = (160, 90)


def diff(a: Rgb, b: Rgb) -> float:
    return float(np.mean(np.abs(a.astype(np.int16) - b.astype(np.int16))))


@pytest.mark.parametrize("palette", PALETTE_NAMES)
@pytest.mark.parametrize("environment", list(ENVIRONMENT_WORDS))
def test_every_palette_and_place_paints_a_composed_frame(palette: str, environment: str) -> None:
    spec = SceneSpec(palette=palette, environments=(environment,), subjects=("figure", "boat"),
                     seed=3)
    frame = TextShot(spec, SMALL, 24, 24).render(12)
    assert frame.shape == (90, 160, 3)
    assert float(frame.std()) > 6  # something is drawn, not a flat card


@pytest.mark.parametrize("size", [(160, 90), (90, 160), (90, 90)])
@pytest.mark.parametrize("move", CAMERA_MOVES)
def test_every_camera_move_moves_the_picture_in_every_aspect(
    size: tuple[int, int], move: str,
) -> None:
    spec = SceneSpec(environments=("mountains", "forest"), camera=CameraMove(move), seed=4)
    shot = TextShot(spec, size, 48, 24)
    first, last = shot.render(0), shot.render(47)
    assert first.shape == (size[1], size[0], 3)
    assert diff(first, last) > (0.2 if move == "static" else 1.0)


@pytest.mark.parametrize("effect", list(ATMOSPHERE_WORDS))
def test_every_atmosphere_effect_changes_the_frame(effect: str) -> None:
    plain = SceneSpec(palette="dawn", environments=("valley",), seed=5)
    with_effect = SceneSpec(palette="dawn", environments=("valley",), atmosphere=(effect,), seed=5)
    a = TextShot(plain, (320, 180), 24, 24).render(10)
    b = TextShot(with_effect, (320, 180), 24, 24).render(10)
    changed = np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=2) > 20
    # Either a broad change (fog, light) or a visible scatter of pixels (particles).
    assert diff(a, b) > 0.5 or float(changed.mean()) > 0.002


def test_near_layers_move_more_than_far_ones_when_the_camera_trucks() -> None:
    pose = CameraPose(truck_x=0.1)
    far = layer_matrix(pose, 0.1, (200, 100), (100, 50))
    near = layer_matrix(pose, 0.9, (200, 100), (100, 50))
    still = layer_matrix(CameraPose(), 0.9, (200, 100), (100, 50))
    assert abs(near[0, 2] - still[0, 2]) > 5 * abs(far[0, 2] - still[0, 2]) > 0


def _disc(x: int) -> Rgb:
    image = np.zeros((180, 320, 3), np.uint8)
    image[:] = (30, 60, 90)
    cv2.circle(image, (x, 90), 40, (240, 200, 40), -1, cv2.LINE_AA)
    cv2.circle(image, (x - 12, 80), 8, (20, 20, 20), -1)  # texture the flow can follow
    return image


def test_morph_moves_shapes_along_the_flow_instead_of_cross_fading() -> None:
    start, end = _disc(130), _disc(190)
    shot = MorphShot(start, end, 25)
    assert np.array_equal(shot.render(0), start)
    assert np.array_equal(shot.render(24), end)
    middle = shot.render(12)
    fade = np.asarray(cv2.addWeighted(start, 0.5, end, 0.5, 0.0), np.uint8)
    # The disc's centre column sits half way (x=160) in a morph; a fade shows two ghosts.
    yellow_mid = float(middle[90, 150:171, 0].mean())
    assert yellow_mid > 200 > float(fade[90, 100:105, 0].mean()) + 60
    assert diff(middle, fade) > 2


def test_cut_out_drops_a_flat_backdrop() -> None:
    image = np.full((200, 160, 3), 250, np.uint8)
    cv2.rectangle(image, (50, 40), (110, 170), (200, 30, 30), -1)
    rgb, alpha = cut_out(Image.fromarray(image))
    assert rgb.shape[:2] == alpha.shape
    assert alpha.shape[0] < 150 and alpha.shape[1] < 80  # cropped to the subject
    assert float(alpha[alpha.shape[0] // 2, alpha.shape[1] // 2]) > 0.9


def test_cut_out_of_a_busy_photo_keeps_a_soft_oval() -> None:
    noisy = np.random.default_rng(0).integers(0, 255, (120, 90, 3), dtype=np.uint8)
    _, alpha = cut_out(Image.fromarray(noisy))
    assert float(alpha[alpha.shape[0] // 2, alpha.shape[1] // 2]) > 0.9
    assert float(alpha[0, 0]) < 0.1
