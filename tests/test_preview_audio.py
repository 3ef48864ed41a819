"""The preview soundtrack: ambience beds, cross-faded cuts, offline speech and its fallback."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from reelserve.engines.preview.ambience import BEDS, RATE, ambience
from reelserve.engines.preview.shots import ShotPlan
from reelserve.engines.preview.soundtrack import build_soundtrack
from reelserve.engines.preview.spec import SceneSpec, SpokenLine
from reelserve.engines.preview.speech import shared_speech


def high_share(audio: npt.NDArray[np.float32]) -> float:
    """Fraction of the energy above 2 kHz."""
    spectrum = np.abs(np.fft.rfft(audio[0])) ** 2
    freqs = np.fft.rfftfreq(audio.shape[1], 1.0 / RATE)
    return float(spectrum[freqs > 2000].sum() / spectrum.sum())


@pytest.mark.parametrize("bed", sorted(BEDS))
def test_every_ambience_bed_is_audible_stereo_and_bounded(bed: str) -> None:
    audio = ambience((bed,), RATE * 2, np.random.default_rng(0))
    assert audio.shape == (2, RATE * 2) and audio.dtype == np.float32
    rms = float(np.sqrt(np.mean(audio**2)))
    assert 0.005 < rms < 0.3
    assert not np.allclose(audio[0], audio[1])  # wide, not mono copied twice


def test_scene_words_change_the_sound() -> None:
    rain = ambience(("rain",), RATE * 2, np.random.default_rng(1))
    wind = ambience(("wind",), RATE * 2, np.random.default_rng(1))
    assert high_share(rain) > 3 * high_share(wind)
    assert not ambience(("no-such-bed",), 100, np.random.default_rng(1)).any()


def _two_shots(lines: tuple[SpokenLine, ...] = ()) -> tuple[list[ShotPlan], list[SceneSpec]]:
    plans = [ShotPlan(0, "a", "a", 0, 72), ShotPlan(1, "b", "b", 72, 72)]
    specs = [SceneSpec(ambience=("rain",), seed=1, lines=lines),
             SceneSpec(palette="night", ambience=("city",), seed=2)]
    return plans, specs


def test_soundtrack_spans_the_video_and_crossfades_at_the_cut() -> None:
    plans, specs = _two_shots()
    audio = build_soundtrack(plans, specs, seed=9, synth=None)
    assert audio.shape == (2, 6 * RATE)
    cut = 3 * RATE
    steps = np.abs(np.diff(audio[0]))
    # No click at the cut: the sample-to-sample change there is ordinary.
    assert float(steps[cut - 200:cut + 200].max()) < 4 * float(np.percentile(steps, 99.9))
    before = high_share(audio[:, cut - RATE:cut - 2000])
    after = high_share(audio[:, cut + 2000:cut + RATE])
    assert before > 2 * after  # rain before the cut, city rumble after it


def test_speech_is_placed_inside_its_shot_after_a_short_lead() -> None:
    synth = shared_speech()
    assert synth is not None, "espeakng-loader must be installed for the preview engine"
    line = SpokenLine("Hello there, welcome home.")
    plans, specs = _two_shots((line,))
    spoken = build_soundtrack(plans, specs, seed=9, synth=synth)
    plain = build_soundtrack(*_two_shots(), seed=9, synth=synth)
    extra = np.abs(spoken - plain).max(axis=0)
    loud = np.nonzero(extra > 0.02)[0]
    assert loud.size > 0
    assert 0.3 * RATE < loud[0] < 0.6 * RATE  # starts just after the shot begins
    assert loud[-1] < 3 * RATE  # and stays in its shot


@pytest.mark.parametrize(("text", "language"), [("The temple is empty.", "en"),
                                                ("你好世界", "cmn")])
def test_offline_speech_speaks_english_and_chinese(text: str, language: str) -> None:
    synth = shared_speech()
    assert synth is not None
    voice = synth.speak(text, language)
    assert 0.5 < voice.size / synth.rate < 4.0
    assert float(np.abs(voice).max()) > 0.2
    assert shared_speech() is synth  # one instance per process


def test_two_voices_sound_different() -> None:
    synth = shared_speech()
    assert synth is not None
    one, two = synth.speak("Good morning", "en", 1), synth.speak("Good morning", "en", 2)
    assert one.size != two.size or not np.allclose(one, two)


def test_without_a_speech_engine_the_soundtrack_has_no_speech_but_still_works() -> None:
    plans, specs = _two_shots((SpokenLine("Hello"),))
    with_line = build_soundtrack(plans, specs, seed=9, synth=None)
    without = build_soundtrack(*_two_shots(), seed=9, synth=None)
    assert np.array_equal(with_line, without)
