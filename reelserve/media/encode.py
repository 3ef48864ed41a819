"""Write H.264 + AAC MP4 files the way the contract describes them.

H.264 ``yuv420p`` at a constant frame rate, ``+faststart`` so players can start
before the whole file arrives, and optionally one AAC stereo track whose
packets are interleaved with the video as frames are written.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import av
import numpy as np
import numpy.typing as npt

AUDIO_RATE = 48_000
AUDIO_FRAME = 1024


class Mp4Writer:
    """Stream RGB frames (and a prepared stereo soundtrack) into an MP4 file.

    ``audio`` is float32 in [-1, 1] with shape (2, samples); it is cut or padded
    to exactly the video's length.
    """

    def __init__(
        self,
        path: Path,
        width: int,
        height: int,
        *,
        frame_count: int,
        fps: int = 24,
        audio: npt.NDArray[np.float32] | None = None,
        crf: int = 23,
        preset: str = "veryfast",
    ) -> None:
        self.path = path
        self.width, self.height, self.fps = width, height, fps
        self.frame_count = frame_count
        self._frames_written = 0
        self._container: Any = av.open(str(path), mode="w", options={"movflags": "+faststart"})
        self._video: Any = self._container.add_stream("libx264", rate=fps)
        self._video.width, self._video.height = width, height
        self._video.pix_fmt = "yuv420p"
        self._video.time_base = Fraction(1, fps)
        self._video.options = {"crf": str(crf), "preset": preset}
        self._audio_stream: Any = None
        self._audio: npt.NDArray[np.float32] | None = None
        self._audio_pos = 0
        if audio is not None:
            self._audio = _fit_audio(audio, frame_count * AUDIO_RATE // fps)
            self._audio_stream = self._container.add_stream("aac", rate=AUDIO_RATE)
            self._audio_stream.layout = "stereo"
            self._audio_stream.time_base = Fraction(1, AUDIO_RATE)

    def write(self, rgb: npt.NDArray[np.uint8]) -> None:
        """Append one frame, an (height, width, 3) uint8 RGB array."""
        if rgb.shape != (self.height, self.width, 3):
            raise ValueError(f"frame shape {rgb.shape} != {(self.height, self.width, 3)}")
        if self._frames_written >= self.frame_count:
            raise ValueError(f"only {self.frame_count} frames were declared")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame = frame.reformat(format="yuv420p")
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
            self._push_audio(len(self._audio[0]) if self._audio is not None else 0)
            for packet in self._audio_stream.encode(None):
                self._container.mux(packet)
        self._container.close()

    def abort(self) -> None:
        self._container.close()
        self.path.unlink(missing_ok=True)

    def _push_audio(self, until: int) -> None:
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


def _fit_audio(audio: npt.NDArray[np.float32], samples: int) -> npt.NDArray[np.float32]:
    if audio.ndim != 2 or audio.shape[0] != 2:
        raise ValueError(f"audio must have shape (2, samples), not {audio.shape}")
    fitted = np.zeros((2, samples), dtype=np.float32)
    n = min(samples, audio.shape[1])
    fitted[:, :n] = np.clip(audio[:, :n], -1.0, 1.0)
    return fitted
