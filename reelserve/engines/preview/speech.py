"""Offline text to speech through the espeak-ng library shipped in ``espeakng-loader``.

espeak-ng keeps global state inside the shared library, so a process gets one
initialised instance (``shared_speech``), created on first use and reused by
every job the worker's child process runs; calls into it are serialised with a
lock. When the wheel or the library cannot be loaded, ``shared_speech`` returns
``None`` and videos are made without speech rather than failing.
"""

from __future__ import annotations

import ctypes
import functools
import importlib
import logging
import threading

import numpy as np
import numpy.typing as npt

from reelserve.media.voices import estimate_pitch_hz

log = logging.getLogger(__name__)

AUDIO_OUTPUT_SYNCHRONOUS = 2
CHARS_UTF8 = 1
PARAM_RATE, PARAM_PITCH, PARAM_RANGE = 1, 3, 4
# Voice number -> (variant, words per minute, pitch 0..100): two voices must sound apart.
VOICES = {0: ("", 160, 48), 1: ("m3", 150, 38), 2: ("f3", 168, 62)}
MAX_SECONDS = 20.0  # a runaway prompt cannot make minutes of audio
CALIBRATION_LINE = "The quiet river runs along the old stone wall."
CALIBRATION_SETTINGS = (10, 30, 50, 70, 90, 100)

SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class SpeechSynth:
    """One initialised espeak-ng; ``speak`` returns mono float32 at ``rate`` Hz."""

    def __init__(self, library_path: str, data_path: str) -> None:
        lib = ctypes.CDLL(library_path)
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p,
                                          ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint,
                                     ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
                                     ctypes.c_void_p, ctypes.c_void_p]
        rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(), 0)
        if rate <= 0:
            raise OSError(f"espeak_Initialize failed with {rate}")
        self.rate = int(rate)
        self._lib = lib
        self._chunks: list[npt.NDArray[np.int16]] = []
        self._lock = threading.Lock()
        # Kept on the instance: ctypes does not hold a reference to the callback.
        self._callback = SynthCallback(self._collect)
        lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav: ctypes._Pointer[ctypes.c_short], count: int, events: int) -> int:
        if wav and count > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        return 0  # 0 = keep going

    def speak(self, text: str, language: str = "en", voice: int = 0,
              pitch: int | None = None) -> npt.NDArray[np.float32]:
        """Speech for ``text`` in ``language`` ("en" or "cmn") with voice 0, 1 or 2.

        ``pitch`` (espeak's 0..100) overrides the voice's own; see ``pitch_for_hz``.
        """
        variant, words_per_minute, voice_pitch = VOICES.get(voice, VOICES[0])
        pitch = voice_pitch if pitch is None else max(0, min(100, pitch))
        name = language if not variant else f"{language}+{variant}"
        data = text.encode("utf-8")
        with self._lock:
            self._chunks = []
            if self._lib.espeak_SetVoiceByName(name.encode()) != 0:
                self._lib.espeak_SetVoiceByName(language.encode())
            self._lib.espeak_SetParameter(PARAM_RATE, words_per_minute, 0)
            self._lib.espeak_SetParameter(PARAM_PITCH, pitch, 0)
            self._lib.espeak_Synth(data, len(data) + 1, 0, 0, 0, CHARS_UTF8, None, None)
            chunks, self._chunks = self._chunks, []
        if not chunks:
            return np.zeros(0, np.float32)
        samples = np.concatenate(chunks)[: int(MAX_SECONDS * self.rate)]
        return (samples.astype(np.float32) / 32768.0).astype(np.float32)


    def voice_for_hz(self, hz: float, language: str = "en") -> tuple[int, int]:
        """The voice (1: lower, 2: higher) and pitch setting whose speech is at ``hz``.

        Measured, not assumed: each voice speaks a calibration line at several
        settings; the voice whose range holds ``hz`` best is taken and the setting
        interpolated between the pitches heard (clamped at the range's ends).
        """
        candidates = []
        for voice in (1, 2):
            settings, heard = self._calibration(language, voice)
            low, high = heard[0], heard[-1]
            miss = 0.0 if low <= hz <= high else min(abs(hz - low), abs(hz - high))
            off_centre = abs(float(np.log(hz / np.sqrt(low * high))))
            setting = round(float(np.interp(hz, heard, settings)))
            candidates.append((miss, off_centre, voice, setting))
        _, _, voice, setting = min(candidates)
        return voice, setting

    @functools.cache  # noqa: B019 (one instance per process, kept for its life)
    def _calibration(self, language: str, voice: int) -> tuple[list[float], list[float]]:
        """Pitch settings and the median pitch heard at each, in rising order."""
        points = []
        for setting in CALIBRATION_SETTINGS:
            audio = self.speak(CALIBRATION_LINE, language, voice, pitch=setting)
            hz = estimate_pitch_hz((np.clip(audio, -1, 1) * 32767).astype(np.int16), self.rate)
            if hz is not None:
                points.append((hz, float(setting)))
        # keep the rising part only: a pitch detector can slip an octave at the extremes
        rising: list[tuple[float, float]] = []
        for point in points:
            if not rising or point[0] > rising[-1][0]:
                rising.append(point)
        return [setting for _, setting in rising], [heard for heard, _ in rising]


@functools.cache
def shared_speech() -> SpeechSynth | None:
    """The process's espeak-ng instance, or ``None`` when it cannot be loaded."""
    try:
        # Imported here, untyped: speech is optional, the engine is not.
        loader = importlib.import_module("espeakng_loader")
    except ImportError:
        log.warning("espeakng-loader is not installed; previews will have no speech")
        return None
    try:
        return SpeechSynth(str(loader.get_library_path()), str(loader.get_data_path()))
    except (OSError, AttributeError) as error:
        log.warning("espeak-ng could not be initialised (%s); previews will have no speech",
                    error)
        return None
