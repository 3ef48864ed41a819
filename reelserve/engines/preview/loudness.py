"""Integrated loudness after ITU-R BS.1770-4, and one gain that brings a mix to -16 LUFS.

The K-weighting biquads are applied in the frequency domain (their response at
each FFT bin, with a second of zero padding so the filter tail does not wrap):
one FFT instead of a per-sample Python loop. Blocks of 400 ms overlapping by
75 % are gated at -70 LUFS and then 10 LU below the ungated mean, as the
standard says. The gain is one number for the whole soundtrack, so the mix
keeps its balance; the few peaks it would push past -1 dBFS (mostly speech)
are then pulled down by a short, smooth limiter instead of lowering everything.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from reelserve.engines.preview.ambience import RATE, Audio

TARGET_LUFS = -16.0
PEAK_CEILING = 10 ** (-1.0 / 20)  # -1 dBFS leaves the AAC encoder room to overshoot
LIMITER_BLOCK = 240  # 5 ms: short enough to touch only peaks, long enough not to click
BLOCK_S, STEP_S = 0.4, 0.1
ABSOLUTE_GATE = -70.0
RELATIVE_GATE = -10.0
# BS.1770-4 K-weighting at 48 kHz: a high-shelf "head" stage, then the RLB high-pass.
K_WEIGHTING = (
    ((1.53512485958697, -2.69169618940638, 1.19839281085285),
     (1.0, -1.69065929318241, 0.73248077421585)),
    ((1.0, -2.0, 1.0),
     (1.0, -1.99004745483398, 0.99007225036621)),
)


def _k_response(samples: int) -> npt.NDArray[np.complex128]:
    """The K-weighting filters' response at each bin of an FFT long enough for ``samples``."""
    size = 1 << int(np.ceil(np.log2(samples + RATE)))
    z = np.exp(-1j * np.pi * np.arange(size // 2 + 1) / (size // 2))  # z^-1 at each bin
    response = np.ones_like(z)
    for b, a in K_WEIGHTING:
        response *= (b[0] + b[1] * z + b[2] * z * z) / (a[0] + a[1] * z + a[2] * z * z)
    return np.asarray(response, dtype=np.complex128)


def _block_power(channel: npt.NDArray[np.float32], response: npt.NDArray[np.complex128],
                 block: int, step: int) -> npt.NDArray[np.float64]:
    """Mean square of one K-weighted channel over every ``block`` samples, ``step`` apart."""
    size = 2 * (response.size - 1)
    spectrum = np.fft.rfft(channel.astype(np.float64), size) * response
    weighted = np.fft.irfft(spectrum, size)[:channel.size]
    del spectrum
    sums = np.concatenate([[0.0], np.cumsum(weighted**2)])
    starts = np.arange(0, channel.size - block + 1, step)
    return np.asarray((sums[starts + block] - sums[starts]) / block, dtype=np.float64)


def _to_lufs(mean_square: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    with np.errstate(divide="ignore"):
        return np.asarray(-0.691 + 10 * np.log10(mean_square), dtype=np.float64)


def integrated_loudness(audio: Audio) -> float:
    """Gated loudness of a (channels, samples) 48 kHz track in LUFS; -inf if silent or short."""
    block, step = int(BLOCK_S * RATE), int(STEP_S * RATE)
    if audio.shape[1] < block:
        return float("-inf")
    # Per block: the channels' mean squares, summed (left and right both weigh 1.0). One
    # channel at a time: a 15 s track's padded spectra take tens of MB per channel, and
    # the soundtrack is built while the first frames are being encoded.
    response = _k_response(audio.shape[1])
    power = _block_power(audio[0], response, block, step)
    for channel in audio[1:]:
        power += _block_power(channel, response, block, step)
    kept = power[_to_lufs(power) > ABSOLUTE_GATE]
    if kept.size == 0:
        return float("-inf")
    relative = float(_to_lufs(np.array([kept.mean()]))[0]) + RELATIVE_GATE
    gated = kept[_to_lufs(kept) > relative]
    return float(_to_lufs(np.array([gated.mean()]))[0])


def normalise_loudness(audio: Audio, target: float = TARGET_LUFS) -> Audio:
    """``audio`` scaled by one gain to ``target`` LUFS, its peaks limited to -1 dBFS."""
    loudness = integrated_loudness(audio)
    if not np.isfinite(loudness):
        return audio
    return limit_peaks(np.asarray(audio * 10 ** ((target - loudness) / 20), dtype=np.float32))


def limit_peaks(audio: Audio, ceiling: float = PEAK_CEILING) -> Audio:
    """Lower the gain smoothly around samples above ``ceiling`` so none stays above it.

    Each 5 ms block takes the gain its loudest sample needs, the minimum over
    it and its two neighbours, and the gain glides linearly between block
    centres. Every sample's gain is then at most what that sample needs.
    """
    samples = audio.shape[1]
    peak = np.abs(audio).max(axis=0)
    if samples == 0 or float(peak.max()) <= ceiling:
        return audio
    need = np.minimum(1.0, ceiling / np.maximum(peak, 1e-12))
    blocks = -(-samples // LIMITER_BLOCK)
    padded = np.ones(blocks * LIMITER_BLOCK)
    padded[:samples] = need
    per_block = padded.reshape(blocks, LIMITER_BLOCK).min(axis=1)
    edged = np.concatenate([[1.0], per_block, [1.0]])
    spread = np.minimum(np.minimum(edged[:-2], edged[1:-1]), edged[2:])
    centres = np.arange(blocks) * LIMITER_BLOCK + LIMITER_BLOCK / 2
    gain = np.interp(np.arange(samples), centres, spread)
    return np.asarray(audio * gain, dtype=np.float32)
