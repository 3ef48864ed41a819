"""The whole soundtrack: a pad across the video, each shot's ambience, and its speech.

Shots' ambiences overlap by ``CROSSFADE_S`` around each cut and cross-fade
there, so the sound changes with the picture without a click. Quoted lines are
spoken one after another from shortly after their shot starts, the ambience
ducking under them; a line that would run past its shot is faded out at the
cut. Levels here are fixed gains, so adding a line of speech changes this mix
only where that line is; the engine then brings the whole mix to -16 LUFS with
one gain (``loudness.py``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from reelserve.engines.preview.ambience import RATE, Audio, Mono, ambience, pad
from reelserve.engines.preview.shots import FPS, ShotPlan
from reelserve.engines.preview.spec import SceneSpec
from reelserve.engines.preview.speech import SpeechSynth

CROSSFADE_S = 0.08
SPEECH_LEAD_S = 0.35  # silence before the first line of a shot
SPEECH_GAP_S = 0.25
SPEECH_GAIN = 0.7
DUCK = 0.45  # ambience level while someone speaks
MINOR_PALETTES = ("night", "neon", "storm", "blue_hour", "overcast")


def samples_for(frames: int) -> int:
    return frames * RATE // FPS


def _ramp(n: int, rising: bool) -> Mono:
    ramp = np.linspace(0.0, 1.0, max(n, 0), dtype=np.float32)
    return ramp if rising else np.ascontiguousarray(ramp[::-1])


def _shot_bed(plan: ShotPlan, spec: SceneSpec, total: int) -> tuple[int, Audio]:
    """(first sample, ambience) for a shot, extended half a crossfade past each cut."""
    half = int(CROSSFADE_S * RATE / 2)
    start = max(0, samples_for(plan.start_frame) - half)
    stop = min(total, samples_for(plan.start_frame + plan.frame_count) + half)
    bed = ambience(spec.ambience, stop - start, np.random.default_rng([spec.seed, 606]))
    if start > 0:
        bed[:, : 2 * half] *= _ramp(min(2 * half, bed.shape[1]), rising=True)
    if stop < total:
        bed[:, -2 * half:] *= _ramp(min(2 * half, bed.shape[1]), rising=False)
    return start, bed


def _resample(mono: Mono, rate: int) -> Mono:
    if mono.size == 0 or rate == RATE:
        return mono.astype(np.float32)
    positions = np.arange(int(mono.size * RATE / rate), dtype=np.float64) * (rate / RATE)
    return np.interp(positions, np.arange(mono.size), mono).astype(np.float32)


def _speech_track(plan: ShotPlan, spec: SceneSpec, synth: SpeechSynth, total: int,
                  voice_pitch: Mapping[int, float]) -> Mono:
    """A mono track, the length of the video, holding this shot's lines.

    A line spoken by ``<<<voice_N>>>`` whose voice came with a sample is spoken at
    that sample's pitch (``voice_pitch[N]``, in Hz).
    """
    track = np.zeros(total, np.float32)
    start = samples_for(plan.start_frame)
    end = min(total, samples_for(plan.start_frame + plan.frame_count))
    at = start + int(SPEECH_LEAD_S * RATE)
    for line in spec.lines:
        if at >= end:
            break
        hz = voice_pitch.get(line.voice)
        voice_number, pitch = (line.voice, None) if hz is None else \
            synth.voice_for_hz(hz, line.language)
        voice = _resample(synth.speak(line.text, line.language, voice_number, pitch),
                          synth.rate)
        piece = voice[: end - at] * SPEECH_GAIN
        if piece.size < voice.size:  # cut by the shot's end: fade rather than click
            fade = min(piece.size, int(0.05 * RATE))
            piece[piece.size - fade:] *= _ramp(fade, rising=False)
        track[at:at + piece.size] += piece
        at += piece.size + int(SPEECH_GAP_S * RATE)
    return track


def build_soundtrack(
    plans: list[ShotPlan], specs: list[SceneSpec], seed: int, synth: SpeechSynth | None,
    voice_pitch: Mapping[int, float] | None = None,
) -> Audio:
    """The (2, samples) float32 soundtrack for the shots, at 48 kHz."""
    total = samples_for(sum(plan.frame_count for plan in plans))
    minor = specs[0].palette in MINOR_PALETTES if specs else False
    out = pad(total / RATE, seed, minor)
    beds = np.zeros((2, total), np.float32)
    speech = np.zeros(total, np.float32)
    for plan, spec in zip(plans, specs, strict=True):
        first, bed = _shot_bed(plan, spec, total)
        beds[:, first:first + bed.shape[1]] += bed
        if synth is not None and spec.lines:
            speech += _speech_track(plan, spec, synth, total, voice_pitch or {})
    if np.any(speech):
        # Duck the beds under the voice with a ~0.1 s smoothed envelope, not a gate.
        active = (np.abs(speech) > 1e-4).astype(np.float64)
        width = int(0.1 * RATE)
        sums = np.concatenate([[0.0], np.cumsum(active)])
        lo = np.clip(np.arange(total) - width // 2, 0, total)
        hi = np.clip(np.arange(total) + width // 2, 0, total)
        envelope = np.clip((sums[hi] - sums[lo]) / width * 3.0, 0.0, 1.0).astype(np.float32)
        beds *= 1.0 - (1.0 - DUCK) * envelope
    out += beds
    out += speech[None, :]
    return np.clip(out, -1.0, 1.0).astype(np.float32)
