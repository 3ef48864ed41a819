"""Write H.264 + AAC MP4 files the way the contract describes them.

H.264 ``yuv420p`` at a constant frame rate, ``+faststart`` so players can start
before the whole file arrives, and optionally one AAC stereo track whose
packets are interleaved with the video as frames are written.

Frames go to x264 as I420 planes. RGB frames are converted with OpenCV's SIMD
``cvtColor`` (BT.601, limited range: the same matrix as FFmpeg's default
``swscale`` conversion, at about a tenth of its cost for 1080p); callers that
already hold I420 planes hand them over with ``write_i420`` and skip that step.

The soundtrack is encoded to AAC on a helper thread of the writer (PyAV
releases the GIL while FFmpeg encodes), so the thread feeding x264 only muxes
finished audio packets between frames and the encoder is never kept waiting
for AAC work.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
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
    still being computed. Either way it is encoded on the writer's own helper
    thread while video is written, and its packets are interleaved with the
    video's as they become ready (at the latest on ``close``).
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
        self._audio_source: Future[Audio] | None = None
        self._audio_packets: Future[list[Any]] | None = None
        self._audio_muxed = 0
        self._aborted = False
        self._audio_thread: ThreadPoolExecutor | None = None
        if audio is not None:
            self._audio_stream = self._container.add_stream("aac", rate=AUDIO_RATE)
            self._audio_stream.layout = "stereo"
            self._audio_stream.time_base = Fraction(1, AUDIO_RATE)
        # Open both encoders and write the header now, on this thread: the AAC
        # encoder is then only ever touched by the helper thread below.
        self._container.start_encoding()
        if audio is not None:
            if not isinstance(audio, Future):
                ready: Future[Audio] = Future()
                ready.set_result(audio)
                audio = ready
            self._audio_source = audio
            self._audio_thread = ThreadPoolExecutor(1, thread_name_prefix="aac")
            self._audio_packets = self._audio_thread.submit(self._encode_audio, audio)

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
            self.abort()
            raise ValueError(f"wrote {self._frames_written} of {self.frame_count} frames")
        for packet in self._video.encode(None):
            self._container.mux(packet)
        if self._audio_packets is not None:
            try:
                self._audio_packets.result()
            except BaseException:
                self.abort()
                raise
            self._push_audio(self._audio_samples)
        self._stop_audio_thread()
        self._container.close()

    def abort(self) -> None:
        self._aborted = True
        if self._audio_source is not None:
            self._audio_source.cancel()
        self._stop_audio_thread()
        self._container.close()
        self.path.unlink(missing_ok=True)

    def _stop_audio_thread(self) -> None:
        if self._audio_thread is not None:
            self._audio_thread.shutdown(wait=True)
            self._audio_thread = None

    def _encode_audio(self, source: Future[Audio]) -> list[Any]:
        """The whole soundtrack as AAC packets, on the helper thread (waits for ``source``)."""
        audio = _fit_audio(source.result(), self._audio_samples)
        packets: list[Any] = []
        for start in range(0, audio.shape[1], AUDIO_FRAME):
            if self._aborted:
                return packets
            chunk = np.ascontiguousarray(audio[:, start:start + AUDIO_FRAME])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
            frame.sample_rate = AUDIO_RATE
            frame.pts = start
            packets += self._audio_stream.encode(frame)
        packets += self._audio_stream.encode(None)
        return packets

    def _push_audio(self, until: int) -> None:
        """Mux the encoded audio packets that start before sample ``until``, once ready."""
        ready = self._audio_packets
        if ready is None or not ready.done():
            return
        packets = ready.result()
        while self._audio_muxed < len(packets) and (
            until >= self._audio_samples or packets[self._audio_muxed].pts < until
        ):
            self._container.mux(packets[self._audio_muxed])
            self._audio_muxed += 1

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
