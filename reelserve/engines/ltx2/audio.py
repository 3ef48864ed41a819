"""The vocoder's waveform (16 or 24 kHz) to the MP4's 48 kHz stereo float32."""

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


def fit_samples(audio: Samples, samples: int) -> Samples:
    """Exactly ``samples`` long: cut, or padded with silence."""
    fitted = np.zeros((2, samples), dtype=np.float32)
    n = min(samples, audio.shape[1])
    fitted[:, :n] = audio[:, :n]
    return fitted
