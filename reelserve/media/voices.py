"""Voice samples: decode any audio (or video) file to mono PCM and measure its pitch.

A voice made with ``POST /v2/kling-create-voice`` keeps its sample as 16 kHz
mono 16-bit PCM (at most 30 s, under 1 MB) and its median fundamental
frequency, which the preview engine's speech follows.

The sample is a stranger's file, so ``decode_voice`` never decodes it in the
calling process: a spawned child does (``media.sandbox``) under ``VOICE_LIMITS``,
and its loop is linear in the input (a running count, at most 31 s kept). What
comes back is plain PCM of bounded length, which ``estimate_pitch_hz`` measures.
"""

from __future__ import annotations

import io
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from reelserve.errors import ChildLimitExceeded, InvalidParameter
from reelserve.media.sandbox import ChildLimits, run_limited

SAMPLE_RATE = 16_000  # what the store keeps (jobs.records.VOICE_RATE)
MIN_SECONDS, MAX_SECONDS = 3.0, 30.0
PITCH_RANGE_HZ = (60.0, 500.0)
# One voice sample's decode: far above what 30 s of any codec needs, far below
# what would hurt the server. Documented in docs/security.md.
VOICE_LIMITS = ChildLimits(cpu_s=10, memory_bytes=768 * 2**20, wall_s=30.0)

Pcm = npt.NDArray[np.int16]


def decode_voice(field: str, data: bytes, limits: ChildLimits = VOICE_LIMITS) -> Pcm:
    """The sample as 16 kHz mono int16; a 400 naming ``field`` when it is not usable.

    The decode runs in a sandboxed child under ``limits``.
    """
    try:
        outcome = run_limited(decode_voice_here, (data,), limits)
    except ChildLimitExceeded as error:
        raise InvalidParameter(field, f"could not be decoded within the limits "
                               f"({error.reason})") from error
    if isinstance(outcome, str):
        raise InvalidParameter(field, outcome)
    pcm = np.frombuffer(outcome, dtype=np.int16)
    seconds = len(pcm) / SAMPLE_RATE
    if not MIN_SECONDS <= seconds <= MAX_SECONDS + 0.5:
        raise InvalidParameter(field, f"must hold {MIN_SECONDS:g} to {MAX_SECONDS:g} s of "
                               f"speech, not {seconds:.1f} s")
    return pcm


def decode_voice_here(data: bytes) -> bytes | str:
    """Decode in this process: the PCM bytes, or why the file is not usable.

    Only a sandboxed child calls this. Every step is linear in the input: each
    frame's samples are counted once, and decoding stops past ``MAX_SECONDS + 1``.
    """
    limit = int((MAX_SECONDS + 1) * SAMPLE_RATE)
    chunks: list[npt.NDArray[Any]] = []
    kept = 0
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                return "has no audio track"
            resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
            for frame in container.decode(audio=0):
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray().reshape(-1)
                    chunks.append(chunk)
                    kept += len(chunk)
                if kept > limit:
                    break
            else:
                chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(None))
    except av.FFmpegError as error:
        return f"is not an audio or video file ({error})"
    pcm = np.concatenate(chunks).astype(np.int16) if chunks else np.zeros(0, np.int16)
    return pcm[:limit].tobytes()


def estimate_pitch_hz(pcm: Pcm, rate: int = SAMPLE_RATE) -> float | None:
    """The median fundamental frequency over voiced frames (autocorrelation), or None.

    All frames at once, each autocorrelation by FFT: linear in the sample's length
    (which ``decode_voice`` caps at 30.5 s).
    """
    signal = pcm.astype(np.float32) / 32768.0
    frame, hop = int(0.04 * rate), int(0.02 * rate)
    low, high = int(rate / PITCH_RANGE_HZ[1]), int(rate / PITCH_RANGE_HZ[0])
    if len(signal) <= frame:
        return None
    loudness = np.sqrt(np.mean(signal**2))
    starts = np.arange(0, len(signal) - frame, hop)
    windows = np.lib.stride_tricks.sliding_window_view(signal, frame)[starts] * np.hanning(frame)
    loud = np.sqrt(np.mean(windows**2, axis=1)) >= 0.3 * loudness  # the rest are pauses
    spectrum = np.fft.rfft(windows[loud], n=2 * frame, axis=1)
    corr = np.fft.irfft(spectrum * np.conj(spectrum), n=2 * frame, axis=1)[:, :frame]
    energy = corr[:, 0]
    lags = low + np.argmax(corr[:, low:high], axis=1)
    peaks = corr[np.arange(len(lags)), lags]
    voiced = (energy > 1e-12) & (peaks > 0.5 * np.maximum(energy, 1e-12))  # clearly periodic
    pitches = rate / lags[voiced]
    return float(np.median(pitches)) if len(pitches) else None
