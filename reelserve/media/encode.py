"""Write H.264 + AAC MP4 files the way the contract describes them.

H.264 ``yuv420p`` at a constant frame rate, ``+faststart`` so players can start
before the whole file arrives, and optionally one AAC stereo track whose
packets are interleaved with the video as frames are written.

Frames go to x264 as I420 planes. RGB frames are converted with OpenCV's SIMD
``cvtColor`` (BT.601, limited range: the same matrix as FFmpeg's default
``swscale`` conversion, at about a tenth of its cost for 1080p); callers that
already hold I420 planes hand them over with ``write_i420`` and skip that step.
"""

from __future__ import annotations

from concurrent.futures import Future
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import av
import cv2
import numpy as np
import numpy.typing as npt

AUDIO_RATE = 48_000
AUDIO_FRAME = 1024
# x264's macroblock tree made the PyAV wheel's libx264 produce slightly different
# bitstreams for identical frames from run to run (decoded pixels up to ~20 levels
# apart); without it, the same frames always give the same file.
REPEATABLE_X264 = "mbtree=0"

Audio = npt.NDArray[np.float32]


def rgb_to_i420(rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """An (h, w, 3) RGB frame as I420 planes stacked in an (h * 3 // 2, w) array."""
    return np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420), dtype=np.uint8)


class Mp4Writer:
    """Stream frames (and a prepared stereo soundtrack) into an MP4 file.

    ``audio`` is float32 in [-1, 1] with shape (2, samples); it is cut or padded
    to exactly the video's length. It may also be a ``Future`` of that array
    still being computed: video is encoded meanwhile, and the muxer interleaves
    the audio packets once the soundtrack is there (at the latest on ``close``).
    """

    def __init__(
        self,
        path: Path,
        width: int,
        height: int,
        *,
        frame_count: int,
        fps: int = 24,
        audio: Audio | Future[Audio] | None = None,
        crf: int = 23,
        preset: str = "veryfast",
    ) -> None:
        if width % 2 or height % 2:
            raise ValueError(f"yuv420p needs an even frame size, not {width}x{height}")
        self.path = path
        self.width, self.height, self.fps = width, height, fps
        self.frame_count = frame_count
        self._frames_written = 0
        self._container: Any = av.open(str(path), mode="w", options={"movflags": "+faststart"})
        self._video: Any = self._container.add_stream("libx264", rate=fps)
        self._video.width, self._video.height = width, height
        self._video.pix_fmt = "yuv420p"
        self._video.time_base = Fraction(1, fps)
        self._video.options = {"crf": str(crf), "preset": preset,
                               "x264-params": REPEATABLE_X264}
        self._audio_stream: Any = None
        self._audio: Audio | None = None
        self._pending_audio: Future[Audio] | None = None
        self._audio_pos = 0
        if audio is not None:
            if isinstance(audio, Future):
                self._pending_audio = audio
            else:
                self._audio = _fit_audio(audio, self._audio_samples)
            self._audio_stream = self._container.add_stream("aac", rate=AUDIO_RATE)
            self._audio_stream.layout = "stereo"
            self._audio_stream.time_base = Fraction(1, AUDIO_RATE)

    @property
    def _audio_samples(self) -> int:
        return self.frame_count * AUDIO_RATE // self.fps

    def write(self, rgb: npt.NDArray[np.uint8]) -> None:
        """Append one frame, an (height, width, 3) uint8 RGB array."""
        if rgb.shape != (self.height, self.width, 3):
            raise ValueError(f"frame shape {rgb.shape} != {(self.height, self.width, 3)}")
        self.write_i420(rgb_to_i420(np.ascontiguousarray(rgb)))

    def write_i420(self, planes: npt.NDArray[np.uint8]) -> None:
        """Append one frame given as I420 planes, an (height * 3 // 2, width) uint8 array.

        The array is handed to the encoder without a copy: do not change it afterwards.
        """
        expected = (self.height * 3 // 2, self.width)
        if planes.shape != expected or planes.dtype != np.uint8:
            raise ValueError(f"I420 frame {planes.dtype} {planes.shape} != uint8 {expected}")
        if self._frames_written >= self.frame_count:
            raise ValueError(f"only {self.frame_count} frames were declared")
        frame = av.VideoFrame.from_numpy_buffer(np.ascontiguousarray(planes), format="yuv420p")
        frame.pts = self._frames_written
        for packet in self._video.encode(frame):
            self._container.mux(packet)
        self._frames_written += 1
        self._push_audio(self._frames_written * AUDIO_RATE // self.fps)

    def close(self) -> None:
        if self._frames_written != self.frame_count:
            self._container.close()
            raise ValueError(f"wrote {self._frames_written} of {self.frame_count} frames")
        for packet in self._video.encode(None):
            self._container.mux(packet)
        if self._audio_stream is not None:
            self._resolve_audio(wait=True)
            self._push_audio(self._audio_samples)
            for packet in self._audio_stream.encode(None):
                self._container.mux(packet)
        self._container.close()

    def abort(self) -> None:
        if self._pending_audio is not None:
            self._pending_audio.cancel()
        self._container.close()
        self.path.unlink(missing_ok=True)

    def _resolve_audio(self, *, wait: bool) -> None:
        pending = self._pending_audio
        if pending is None or not (wait or pending.done()):
            return
        self._audio = _fit_audio(pending.result(), self._audio_samples)
        self._pending_audio = None

    def _push_audio(self, until: int) -> None:
        self._resolve_audio(wait=False)
        if self._audio is None:
            return
        until = min(until, self._audio.shape[1])
        while self._audio_pos + AUDIO_FRAME <= until or (
            self._audio_pos < until == self._audio.shape[1]
        ):
            end = min(self._audio_pos + AUDIO_FRAME, until)
            chunk = np.ascontiguousarray(self._audio[:, self._audio_pos:end])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
            frame.sample_rate = AUDIO_RATE
            frame.pts = self._audio_pos
            for packet in self._audio_stream.encode(frame):
                self._container.mux(packet)
            self._audio_pos = end

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()


def _fit_audio(audio: Audio, samples: int) -> Audio:
    if audio.ndim != 2 or audio.shape[0] != 2:
        raise ValueError(f"audio must have shape (2, samples), not {audio.shape}")
    fitted = np.zeros((2, samples), dtype=np.float32)
    n = min(samples, audio.shape[1])
    fitted[:, :n] = np.clip(audio[:, :n], -1.0, 1.0)
    return fitted
