"""From the pipeline's decoded frames to the encoder's I420 planes, one frame at a time.

The pipeline returns a shot as one (frames, 3, height, width) tensor in [0, 1]. Widening
the whole clip to float32 and converting it at once (121 frames at 1920x1088 are 3 GB of
float32) cost as long as the H.264 encode itself on the CPU. Here each frame is cropped
as a view, converted on its own with OpenCV (one SIMD pass per channel that scales,
rounds and saturates; torch ops would wake its thread pool beside x264's threads),
merged to RGB and turned into I420 planes, on one thread that keeps ``AHEAD`` frames in
front of the encoder. On a GPU the frames become uint8 on the device first, a chunk at a
time, so only a quarter of the bytes cross to the CPU and no full-clip float copy exists
on either side.

Imported only inside the engine child (torch).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from reelserve.engines.ltx2.recipe import crop_box
from reelserve.media.encode import rgb_to_i420

Planes = npt.NDArray[np.uint8]
AHEAD = 8  # frames converted in front of the encoder
DEVICE_CHUNK = 8  # frames converted to uint8 on the GPU at a time


def frames_to_host(frames: Any, torch: Any) -> Any:
    """The pipeline's frames on the CPU: uint8 converted on the device when they are on a
    GPU (chunk by chunk), as they are (float, converted per frame later) on the CPU."""
    if frames.device.type == "cpu":
        return frames
    cuda = frames.device.type == "cuda"
    host = torch.empty(tuple(frames.shape), dtype=torch.uint8, pin_memory=cuda)
    for start in range(0, frames.shape[0], DEVICE_CHUNK):
        chunk = frames[start:start + DEVICE_CHUNK]
        host[start:start + DEVICE_CHUNK].copy_(to_uint8(chunk, torch), non_blocking=cuda)
    if cuda:  # the copies were asynchronous
        torch.cuda.synchronize(frames.device)
    return host


def to_uint8(frames: Any, torch: Any) -> Any:
    """Frames in [0, 1] (any float dtype) to uint8, rounding to nearest, in a new tensor."""
    if frames.dtype == torch.uint8:
        return frames
    wide = frames.to(torch.float32, copy=True)
    return wide.mul_(255.0).add_(0.5).clamp_(0, 255).to(torch.uint8)


class ShotFrames:
    """The first ``count`` frames of one shot (a (frames, 3, h, w) host tensor, uint8 or
    float in [0, 1], as diffusers clamps its output), centre-cropped to ``size`` and, only
    for a render smaller than the output, scaled up to it."""

    def __init__(self, frames: Any, count: int, size: tuple[int, int], torch: Any) -> None:
        if frames.shape[0] < count:
            raise ValueError(f"the shot has {frames.shape[0]} frames, {count} were asked for")
        self.frames, self.count, self.size, self.torch = frames, count, size, torch
        height, width = frames.shape[-2:]
        self.box = crop_box((int(width), int(height)), size)

    def __len__(self) -> int:
        return self.count

    def rgb(self, index: int) -> npt.NDArray[np.uint8]:
        """Frame ``index`` as (height, width, 3) uint8 RGB at the output size."""
        left, top, crop_w, crop_h = self.box
        planar = self.frames[index, :, top:top + crop_h, left:left + crop_w]
        if planar.dtype == self.torch.uint8:
            channels = list(planar.contiguous().numpy())
        else:
            # torch's vectorised cast (a no-op for float32): NumPy's float16 cast is slower
            wide = planar.to(self.torch.float32).numpy()
            # |x| * 255 rounded and saturated: x is never below 0 here.
            channels = [cv2.convertScaleAbs(plane, alpha=255.0) for plane in wide]
        rgb = np.asarray(cv2.merge(channels), dtype=np.uint8)
        if (crop_w, crop_h) == self.size:
            return rgb
        # Only a render smaller than the output (REELSERVE_LTX2_LONG_SIDE) is scaled.
        return np.asarray(cv2.resize(rgb, self.size, interpolation=cv2.INTER_CUBIC),
                          dtype=np.uint8)

    def i420(self, index: int) -> Planes:
        """Frame ``index`` as I420 planes for ``Mp4Writer.write_i420``."""
        return rgb_to_i420(self.rgb(index))


def planes_ahead(shots: Iterable[ShotFrames],
                 ahead: int = AHEAD) -> Generator[Planes, None, None]:
    """Every frame of every shot as I420 planes, in order, converted on one thread up to
    ``ahead`` frames in front of the consumer (torch, OpenCV and x264 release the GIL).
    Closing the iterator early cancels the conversions not yet started."""
    pending: deque[Future[Planes]] = deque()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ltx2-frames") as pool:
        try:
            for shot in shots:
                for index in range(len(shot)):
                    pending.append(pool.submit(shot.i420, index))
                    if len(pending) > ahead:
                        yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
