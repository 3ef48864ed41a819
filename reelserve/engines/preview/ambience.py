"""Synthesised ambience beds: wind, rain, water, fire, city, forest with birds, crowd.

Every bed is shaped noise (white noise filtered in the frequency domain, one
FFT per channel) under a slow envelope, plus a few sparse events (drops,
crackles, chirps, passing cars). Left and right use independent noise so the
bed sounds wide. All randomness comes from the generator passed in.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

RATE = 48_000
Audio = npt.NDArray[np.float32]
Mono = npt.NDArray[np.float32]


def band_noise(
    rng: np.random.Generator, n: int, low: float, high: float, tilt: float = 0.0,
) -> Mono:
    """White noise kept between ``low`` and ``high`` Hz, RMS 1; ``tilt`` < 0 darkens it."""
    spectrum = np.fft.rfft(rng.standard_normal(n).astype(np.float32))
    freqs = np.fft.rfftfreq(n, 1.0 / RATE).astype(np.float32)
    # Soft shoulders (an octave each) instead of brick walls, which would ring.
    rise = np.clip(np.log2(np.maximum(freqs, 1.0) / low) + 1.0, 0.0, 1.0)
    fall = np.clip(np.log2(high / np.maximum(freqs, 1.0)) + 1.0, 0.0, 1.0)
    shape = rise * fall * (np.maximum(freqs, 20.0) / 1000.0) ** tilt
    signal = np.fft.irfft(spectrum * shape, n).astype(np.float32)
    return (signal / (float(np.sqrt(np.mean(signal**2))) + 1e-9)).astype(np.float32)


def slow_envelope(rng: np.random.Generator, n: int, rate_hz: float, depth: float) -> Mono:
    """A smooth random gain around 1 that changes about ``rate_hz`` times a second."""
    nodes = max(2, int(n / RATE * rate_hz) + 2)
    values = 1.0 + depth * rng.uniform(-1.0, 1.0, nodes)
    xs = np.linspace(0.0, nodes - 1, n, dtype=np.float32)
    smooth = np.interp(xs, np.arange(nodes), values)
    return np.clip(smooth, 0.0, None).astype(np.float32)


def _stereo(rng: np.random.Generator, n: int, low: float, high: float, tilt: float = 0.0) -> Audio:
    return np.stack([band_noise(rng, n, low, high, tilt), band_noise(rng, n, low, high, tilt)])


def _events(
    rng: np.random.Generator, n: int, per_second: float, sound: Mono, pan_spread: float,
) -> Audio:
    """Copies of ``sound`` at random times and stereo positions."""
    out = np.zeros((2, n), np.float32)
    count = rng.poisson(per_second * n / RATE)
    for _ in range(count):
        at = int(rng.integers(0, max(1, n - 1)))
        gain = float(rng.uniform(0.3, 1.0))
        pan = float(rng.uniform(-pan_spread, pan_spread))
        piece = sound[: n - at] * gain
        out[0, at:at + piece.size] += piece * (1.0 - pan) * 0.5
        out[1, at:at + piece.size] += piece * (1.0 + pan) * 0.5
    return out


def wind(rng: np.random.Generator, n: int) -> Audio:
    gusts = slow_envelope(rng, n, 0.4, 0.7)
    return _stereo(rng, n, 120.0, 900.0, tilt=-0.8) * gusts * 0.05


def rain(rng: np.random.Generator, n: int) -> Audio:
    hiss = _stereo(rng, n, 900.0, 9000.0, tilt=-0.3) * 0.04
    t = np.arange(int(0.012 * RATE), dtype=np.float32) / RATE
    drop = (np.sin(2 * np.pi * 2600.0 * t) * np.exp(-t * 500.0)).astype(np.float32)
    return hiss + _events(rng, n, 40.0, drop, 0.9) * 0.12


def water(rng: np.random.Generator, n: int) -> Audio:
    time = np.arange(n, dtype=np.float32) / RATE
    phase = float(rng.uniform(0, 6.28))
    swell = (0.35 + 0.65 * np.sin(2 * np.pi * 0.12 * time + phase) ** 2).astype(np.float32)
    return _stereo(rng, n, 80.0, 1500.0, tilt=-0.6) * swell * 0.07


def fire(rng: np.random.Generator, n: int) -> Audio:
    roar = _stereo(rng, n, 40.0, 400.0, tilt=-1.0) * slow_envelope(rng, n, 2.0, 0.4) * 0.04
    crack = (band_noise(rng, int(0.006 * RATE), 2000.0, 9000.0)
             * np.exp(-np.arange(int(0.006 * RATE), dtype=np.float32) / 60.0)).astype(np.float32)
    return roar + _events(rng, n, 9.0, crack, 0.5) * 0.08


def city(rng: np.random.Generator, n: int) -> Audio:
    rumble = _stereo(rng, n, 35.0, 300.0, tilt=-0.8) * 0.05
    length = int(3.0 * RATE)
    whoosh = band_noise(rng, length, 150.0, 1400.0) * np.hanning(length).astype(np.float32) ** 2
    return rumble + _events(rng, n, 0.5, whoosh.astype(np.float32), 0.8) * 0.05


def forest(rng: np.random.Generator, n: int) -> Audio:
    breeze = _stereo(rng, n, 300.0, 3000.0, tilt=-0.5) * slow_envelope(rng, n, 0.3, 0.6) * 0.02
    out = breeze
    for _ in range(3):  # a few bird species, each with its own call
        length = int(rng.uniform(0.08, 0.2) * RATE)
        t = np.arange(length, dtype=np.float32) / RATE
        base, sweep = float(rng.uniform(2500, 4500)), float(rng.uniform(-2500, 2500))
        trill = 1.0 + 0.5 * np.sin(2 * np.pi * float(rng.uniform(20, 45)) * t)
        freq = base + sweep * t / t[-1]
        phase = 2 * np.pi * np.cumsum(freq) / RATE
        chirp = (np.sin(phase) * np.hanning(length) * trill).astype(np.float32)
        out = out + _events(rng, n, 0.8, chirp, 0.9) * 0.05
    return out


def crowd(rng: np.random.Generator, n: int) -> Audio:
    babble = _stereo(rng, n, 250.0, 3000.0, tilt=-0.4)
    syllables = np.stack([slow_envelope(rng, n, 5.0, 0.9), slow_envelope(rng, n, 5.0, 0.9)])
    return babble * syllables * 0.035


BEDS = {"wind": wind, "rain": rain, "water": water, "fire": fire, "city": city,
        "forest": forest, "crowd": crowd}


def ambience(sounds: tuple[str, ...], n: int, rng: np.random.Generator) -> Audio:
    """The mix of the named beds over ``n`` samples; unknown names are skipped."""
    out = np.zeros((2, n), np.float32)
    for name in sounds:
        bed = BEDS.get(name)
        if bed is not None:
            out += bed(rng, n)
    return out


def pad(seconds: float, seed: int, minor: bool) -> Audio:
    """A quiet sustained chord under everything: seed-chosen root, slow swell, wide."""
    rng = np.random.default_rng([seed, 303])
    n = int(seconds * RATE)
    t = np.arange(n, dtype=np.float32) / RATE
    root = 98.0 * 2 ** (int(rng.integers(0, 10)) / 12.0)
    third = 2 ** (3 / 12) if minor else 2 ** (4 / 12)
    out = np.zeros((2, n), np.float32)
    for ratio, gain in ((1.0, 0.5), (third, 0.28), (1.5, 0.3), (2.0, 0.2)):
        for channel, detune in ((0, 0.998), (1, 1.002)):  # detuned sides give width
            phase = float(rng.uniform(0, 6.28))
            tone = np.sin(2 * np.pi * root * ratio * detune * t + phase)
            out[channel] += (tone * gain).astype(np.float32)
    swell = 0.6 + 0.4 * np.sin(2 * np.pi * 0.09 * t + float(rng.uniform(0, 6.28)))
    fade = np.minimum(1.0, np.minimum(t / 0.5, (seconds - t) / 0.5))
    shaped: Audio = (out * swell * np.clip(fade, 0.0, 1.0) * 0.022).astype(np.float32)
    return shaped
