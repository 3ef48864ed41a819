"""The BS.1770 loudness meter, the -16 LUFS normalisation and the peak limiter."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from reelserve.engines.preview.ambience import BEDS, RATE, ambience
from reelserve.engines.preview.loudness import (
    PEAK_CEILING,
    integrated_loudness,
    limit_peaks,
    normalise_loudness,
)
from reelserve.engines.preview.shots import ShotPlan
from reelserve.engines.preview.soundtrack import build_soundtrack
from reelserve.engines.preview.spec import SceneSpec, SpokenLine
from reelserve.engines.preview.speech import shared_speech


def sine(amplitude: float, seconds: float = 3.0, hz: float = 997.0) -> npt.NDArray[np.float32]:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_meter_reads_the_bs1770_reference_tones() -> None:
    tone = sine(1.0)
    # BS.1770-4: a 0 dBFS 997 Hz sine in one channel reads -3.01 LKFS.
    assert integrated_loudness(np.stack([tone, 0 * tone])) == pytest.approx(-3.01, abs=0.02)
    quiet = (np.stack([tone, tone]) * 10 ** (-23 / 20)).astype(np.float32)
    assert integrated_loudness(quiet) == pytest.approx(-23.0, abs=0.02)
    # The gate ignores silence: half a clip of nothing does not lower the reading by 3 dB
    # (only the few 400 ms blocks that straddle the edge count, a little quieter).
    padded = np.concatenate([quiet, np.zeros_like(quiet)], axis=1)
    assert integrated_loudness(padded) == pytest.approx(-23.0, abs=0.3)


def test_silence_and_too_short_clips_are_left_alone() -> None:
    silent = np.zeros((2, RATE), np.float32)
    assert integrated_loudness(silent) == float("-inf")
    assert np.array_equal(normalise_loudness(silent), silent)
    short = np.stack([sine(0.1, 0.2)] * 2)
    assert np.array_equal(normalise_loudness(short), short)


@pytest.mark.parametrize("bed", sorted(BEDS))
def test_every_ambience_is_brought_to_minus_16_lufs(bed: str) -> None:
    audio = normalise_loudness(ambience((bed,), RATE * 3, np.random.default_rng(2)))
    assert integrated_loudness(audio) == pytest.approx(-16.0, abs=0.5)
    assert float(np.abs(audio).max()) <= PEAK_CEILING + 1e-6


def test_speech_peaks_are_limited_while_the_mix_stays_near_minus_16() -> None:
    synth = shared_speech()
    assert synth is not None
    plans = [ShotPlan(0, "a", "a", 0, 96)]
    specs = [SceneSpec(ambience=("wind",), seed=3,
                       lines=(SpokenLine("Welcome home, traveller. The road was long."),))]
    mixed = build_soundtrack(plans, specs, seed=3, synth=synth)
    gain = 10 ** ((-16.0 - integrated_loudness(mixed)) / 20)
    assert float(np.abs(mixed).max()) * gain > 1.0  # one plain gain would clip this mix
    audio = normalise_loudness(mixed)
    assert float(np.abs(audio).max()) <= PEAK_CEILING + 1e-6
    assert integrated_loudness(audio) == pytest.approx(-16.0, abs=1.0)


def test_limiter_touches_only_the_neighbourhood_of_a_peak() -> None:
    audio = np.stack([sine(0.5)] * 2)
    audio[:, RATE] = 1.5  # one stray sample
    limited = limit_peaks(audio)
    assert float(np.abs(limited).max()) <= PEAK_CEILING + 1e-6
    changed = np.nonzero(np.abs(limited - audio).max(axis=0) > 1e-6)[0]
    assert changed.min() > RATE - 1000 and changed.max() < RATE + 1000  # ~20 ms around it
    half = (audio * 0.5).astype(np.float32)
    assert np.array_equal(limit_peaks(half), half)  # nothing above the ceiling
