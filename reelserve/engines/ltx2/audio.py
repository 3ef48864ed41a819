"""The vocoder's waveform (24 or 48 kHz) to the MP4's 48 kHz stereo, shots joined."""

from __future__ import annotations

from typing import Any

import av
import numpy as np
import numpy.typing as npt

from reelserve.media.encode import AUDIO_RATE

Samples = npt.NDArray[np.float32]


def to_output_rate(audio: Any, rate: int) -> Samples:
    """(channels, samples) at ``rate`` to (2, samples) at 48 kHz, with libswresample."""
    waveform = np.asarray(audio, dtype=np.float32)
    if waveform.ndim == 1:
        waveform = waveform[None, :]
    if waveform.shape[0] == 1:
        waveform = np.repeat(waveform, 2, axis=0)
    waveform = np.ascontiguousarray(np.clip(waveform[:2], -1.0, 1.0))
    if waveform.shape[1] == 0:
        return np.zeros((2, 0), dtype=np.float32)
    if rate == AUDIO_RATE:
        return waveform
    frame = av.AudioFrame.from_ndarray(waveform, format="fltp", layout="stereo")
    frame.sample_rate = rate
    resampler = av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE)
    chunks = [out.to_ndarray() for out in [*resampler.resample(frame), *resampler.resample(None)]]
    return np.concatenate(chunks, axis=1).astype(np.float32) if chunks else np.zeros(
        (2, 0), dtype=np.float32)


def join_shots(shots: list[tuple[Samples, int]], fade: int) -> Samples:
    """The shots' audio end to end, each cut to its length, with a ``fade``-sample
    crossfade at every cut so the waveform does not jump (a click).

    Each entry is (audio, samples kept). A shot's audio runs past its cut (the model
    generated 8k+1 frames), so the tail it would lose fades out under the next
    shot's start and the total length stays exact; a shot without such a tail is
    padded with silence.
    """
    total = sum(kept for _, kept in shots)
    out = np.zeros((2, total), dtype=np.float32)
    start = 0
    for index, (audio, kept) in enumerate(shots):
        part = fit_samples(audio, kept)
        out[:, start:start + kept] += part
        if index > 0 and fade > 0:
            previous, previous_kept = shots[index - 1]
            tail = previous[:, previous_kept:previous_kept + fade]
            n = min(tail.shape[1], kept)
            if n:
                ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
                out[:, start:start + n] = (part[:, :n] * np.sqrt(ramp)
                                           + tail[:, :n] * np.sqrt(1.0 - ramp))
        start += kept
    return out


def fit_samples(audio: Samples, samples: int) -> Samples:
    """Exactly ``samples`` long: cut, or padded with silence."""
    fitted = np.zeros((2, samples), dtype=np.float32)
    n = min(samples, audio.shape[1])
    fitted[:, :n] = audio[:, :n]
    return fitted
