"""Voice samples: decode any audio (or video) file to mono PCM and measure its pitch.

A voice made with ``POST /v2/kling-create-voice`` keeps its sample as 16 kHz
mono 16-bit PCM (at most 30 s, under 1 MB) and its median fundamental
frequency, which the preview engine's speech follows.
"""

from __future__ import annotations

import io

import av
import numpy as np
import numpy.typing as npt

from reelserve.errors import InvalidParameter
from reelserve.jobs.records import VOICE_RATE

SAMPLE_RATE = VOICE_RATE
MIN_SECONDS, MAX_SECONDS = 3.0, 30.0
PITCH_RANGE_HZ = (60.0, 500.0)

Pcm = npt.NDArray[np.int16]


def decode_voice(field: str, data: bytes) -> Pcm:
    """The sample as 16 kHz mono int16; a 400 naming ``field`` when it is not usable."""
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise InvalidParameter(field, "has no audio track")
            resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
            chunks = []
            for frame in container.decode(audio=0):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
                if sum(len(c) for c in chunks) > (MAX_SECONDS + 1) * SAMPLE_RATE:
                    break
            chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(None))
    except av.FFmpegError as error:
        raise InvalidParameter(field, f"is not an audio or video file ({error})") from error
    pcm = np.concatenate(chunks).astype(np.int16) if chunks else np.zeros(0, np.int16)
    seconds = len(pcm) / SAMPLE_RATE
    if not MIN_SECONDS <= seconds <= MAX_SECONDS + 0.5:
        raise InvalidParameter(field, f"must hold {MIN_SECONDS:g} to {MAX_SECONDS:g} s of "
                               f"speech, not {seconds:.1f} s")
    return pcm


def estimate_pitch_hz(pcm: Pcm, rate: int = SAMPLE_RATE) -> float | None:
    """The median fundamental frequency over voiced frames (autocorrelation), or None."""
    signal = pcm.astype(np.float32) / 32768.0
    frame, hop = int(0.04 * rate), int(0.02 * rate)
    low, high = int(rate / PITCH_RANGE_HZ[1]), int(rate / PITCH_RANGE_HZ[0])
    loudness = np.sqrt(np.mean(signal**2)) if len(signal) else 0.0
    pitches = []
    for start in range(0, len(signal) - frame, hop):
        window = signal[start:start + frame] * np.hanning(frame)
        if np.sqrt(np.mean(window**2)) < 0.3 * loudness:
            continue  # a pause
        corr = np.correlate(window, window, mode="full")[frame - 1:]
        if corr[0] <= 0:
            continue
        lag = low + int(np.argmax(corr[low:high]))
        if corr[lag] / corr[0] > 0.5:  # clearly periodic: voiced
            pitches.append(rate / lag)
    return float(np.median(pitches)) if pitches else None
