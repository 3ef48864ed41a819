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

log = logging.getLogger(__name__)

AUDIO_OUTPUT_SYNCHRONOUS = 2
CHARS_UTF8 = 1
PARAM_RATE, PARAM_PITCH, PARAM_RANGE = 1, 3, 4
# Voice number -> (variant, words per minute, pitch 0..100): two voices must sound apart.
VOICES = {0: ("", 160, 48), 1: ("m3", 150, 38), 2: ("f3", 168, 62)}
MAX_SECONDS = 20.0  # a runaway prompt cannot make minutes of audio

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

    def speak(self, text: str, language: str = "en", voice: int = 0) -> npt.NDArray[np.float32]:
        """Speech for ``text`` in ``language`` ("en" or "cmn") with voice 0, 1 or 2."""
        variant, words_per_minute, pitch = VOICES.get(voice, VOICES[0])
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
