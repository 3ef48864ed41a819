"""Shots' audio joined at exact lengths, with a crossfade instead of a click at each cut."""

from __future__ import annotations

import numpy as np

from reelserve.engines.ltx2.audio import join_shots

RATE = 48_000


def _tone(hz: float, seconds: float, phase: float = 0.0) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    wave = (0.5 * np.sin(2 * np.pi * hz * t + phase)).astype(np.float32)
    return np.stack([wave, wave])


def test_joined_audio_has_exactly_the_shots_lengths() -> None:
    first, second = _tone(220, 3.05), _tone(330, 4.05)  # 8k+1 frames run past the cut
    joined = join_shots([(first, 3 * RATE), (second, 4 * RATE)], fade=960)
    assert joined.shape == (2, 7 * RATE)
    assert np.allclose(joined[:, :3 * RATE], first[:, :3 * RATE])  # before the cut: untouched
    assert np.allclose(joined[:, 3 * RATE + 960:], second[:, 960:4 * RATE])


def test_the_cut_has_no_jump_with_a_crossfade_and_a_click_without() -> None:
    first, second = _tone(220, 3.05), _tone(330, 4.05, phase=np.pi / 2)  # second starts at 0.5
    cut = 3 * RATE
    hard = join_shots([(first, cut), (second, 4 * RATE)], fade=0)
    faded = join_shots([(first, cut), (second, 4 * RATE)], fade=960)
    step = np.abs(np.diff(faded[0, cut - 2:cut + 2])).max()
    click = np.abs(np.diff(hard[0, cut - 2:cut + 2])).max()
    assert click > 0.3  # the hard cut jumps by about the amplitude
    assert step < 0.05  # the crossfade continues the first shot's waveform


def test_a_shot_without_a_tail_is_padded_with_silence() -> None:
    short = _tone(220, 2.0)
    joined = join_shots([(short, 3 * RATE)], fade=960)
    assert joined.shape == (2, 3 * RATE) and not joined[:, 2 * RATE:].any()
