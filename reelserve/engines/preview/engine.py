"""``PreviewEngine``: plans shots, renders their frames, builds the soundtrack, encodes.

Everything random derives from ``params.seed`` through NumPy generators seeded
with (seed, shot, purpose) tuples, never from global state or the clock, so the
same request renders the same frames and samples on any run.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from reelserve.catalog import JobParams
from reelserve.engines.base import GenerationInputs, ProgressCallback, StopCheck
from reelserve.engines.preview.cutout import ElementShot, ElementWalk
from reelserve.engines.preview.frames import OutputFrames
from reelserve.engines.preview.imagescene import ImageMotionShot, cover_crop
from reelserve.engines.preview.loudness import normalise_loudness
from reelserve.engines.preview.morph import MorphShot, ReversedShot
from reelserve.engines.preview.prompt import SceneReader
from reelserve.engines.preview.shots import FPS, ShotPlan, ShotRenderer, plan_shots
from reelserve.engines.preview.soundtrack import build_soundtrack
from reelserve.engines.preview.spec import SceneSpec
from reelserve.engines.preview.speech import shared_speech
from reelserve.engines.preview.textscene import TextShot
from reelserve.errors import EngineError, Interrupted
from reelserve.media.encode import Mp4Writer
from reelserve.settings_sections import PreviewSettings

Planes = npt.NDArray[np.uint8]  # one I420 frame
PROGRESS_EVERY = 6  # frames between progress reports
READ_AHEAD = 3  # frames rendered ahead of the encoder
HELPER_NICENESS = 19  # the painter and soundtrack threads yield the cores to x264's (Linux)
WORK_DIVISOR = 3  # text scenes are composed at a third of the output size, then upscaled
# Framing per shot index when shots are cut from one prompt: wide, close, medium.
CUT_FRAMING = (1.0, 1.3, 1.12)
IMAGE_MOTION = 0.7  # how far image-to-video camera moves go; photos tear if pushed harder


def work_size(size: tuple[int, int]) -> tuple[int, int]:
    """The composing resolution for text scenes: even, a third of the output."""
    width, height = size
    return (width // WORK_DIVISOR) // 2 * 2, (height // WORK_DIVISOR) // 2 * 2


class PreviewEngine:
    """The CPU storyboard engine behind ``engine = "preview"``."""

    name = "preview"

    def __init__(self, settings: PreviewSettings) -> None:
        self.settings = settings

    def check_inputs(self, params: JobParams, inputs: GenerationInputs) -> None:
        """Reject an image-to-video request that arrived without its start image."""
        if params.start_image_url is not None and inputs.start_image is None:
            raise EngineError(
                f"start_image_url {params.start_image_url[:80]!r} was given "
                "but no decoded start image reached the engine"
            )
        if params.end_image_url is not None and inputs.end_image is None:
            raise EngineError(
                f"end_image_url {params.end_image_url[:80]!r} was given "
                "but no decoded end image reached the engine"
            )

    def generate(
        self,
        params: JobParams,
        inputs: GenerationInputs,
        output_path: Path,
        progress: ProgressCallback,
        should_stop: StopCheck,
    ) -> None:
        """Render ``params`` into an MP4 at ``output_path``."""
        self.check_inputs(params, inputs)
        plans = plan_shots(params)
        reader = SceneReader(params.negative_prompt, params.cfg_scale)
        specs = [_shot_spec(reader, params, plan, len(plans)) for plan in plans]
        _check_stop(should_stop)
        width, height = params.size
        done = 0
        # Three things run at once: the soundtrack on one helper thread, frames on
        # another (up to READ_AHEAD in advance), and the encoder here. NumPy, OpenCV
        # and the encoder release the GIL, so they overlap; frames are still consumed
        # strictly in order, so the output does not depend on timing. The helpers run
        # at a lower priority than x264's threads, in the time x264 leaves idle.
        with _opencv_on_calling_threads(), \
                ThreadPoolExecutor(1, initializer=_behind_the_encoder) as sound, \
                ThreadPoolExecutor(1, initializer=_behind_the_encoder) as painter:
            audio = (sound.submit(_soundtrack, params, inputs, plans, specs)
                     if params.generate_audio else None)
            with Mp4Writer(output_path, width, height, frame_count=params.frame_count,
                           audio=audio) as writer:
                for planes in _read_ahead(_frame_stream(params, inputs, plans, specs), painter):
                    _check_stop(should_stop)
                    writer.write_i420(planes)
                    done += 1
                    if done % PROGRESS_EVERY == 0:
                        progress(done / params.frame_count)
                if audio is not None:
                    audio.result()  # a failed soundtrack raises here, and the file is removed
        progress(1.0)


def create_engine(settings: PreviewSettings) -> PreviewEngine:
    """Factory named by the engine registry."""
    return PreviewEngine(settings)


def _soundtrack(
    params: JobParams, inputs: GenerationInputs, plans: list[ShotPlan], specs: list[SceneSpec],
) -> npt.NDArray[np.float32]:
    synth = shared_speech() if any(spec.lines for spec in specs) else None
    # <<<voice_N>>> speaks at the pitch of the N-th voice's sample, when one came
    pitches = {n: voice.pitch_hz for n, voice in enumerate(inputs.voices, start=1)
               if voice.pitch_hz}
    return normalise_loudness(build_soundtrack(plans, specs, params.seed, synth, pitches))


def _behind_the_encoder() -> None:
    """Lower the calling helper thread's CPU priority to HELPER_NICENESS (Linux only).

    x264's frame threads are the job's critical path, yet keep only about 1.5 of
    two cores busy. At equal priority the painter takes cores from them while
    they have work; at a lower one it renders in the gaps they leave, and the
    whole job gets closer to the encoder's own time. The helper threads belong
    to one job and end with it, so the priority goes with them.
    """
    if sys.platform != "linux":
        return  # only Linux gives each thread its own nice value through setpriority
    with contextlib.suppress(OSError):  # a sandbox may refuse; the job only runs slower
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HELPER_NICENESS)


@contextlib.contextmanager
def _opencv_on_calling_threads() -> Iterator[None]:
    """Keep OpenCV from splitting a call over its own thread pool for the job's length.

    x264 already keeps the cores busy: a warp or resize split across them only
    waits on x264 and adds hand-offs, and it runs at the pool's priority, not the
    painter's. (OpenCV's setting is per process; engines run one job at a time.)
    """
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(threads)


def _read_ahead(frames: Iterator[Planes], painter: ThreadPoolExecutor) -> Iterator[Planes]:
    """``frames`` in order, with up to READ_AHEAD of them rendered on ``painter`` in advance.

    ``painter`` has one thread, so the generator is only ever advanced by it, one
    call after another, and the futures complete in submission order.
    """
    pending = deque(painter.submit(next, frames, None) for _ in range(READ_AHEAD))
    try:
        while (frame := pending.popleft().result()) is not None:
            pending.append(painter.submit(next, frames, None))
            yield frame
    finally:
        for future in pending:
            future.cancel()


def _frame_stream(
    params: JobParams, inputs: GenerationInputs, plans: list[ShotPlan], specs: list[SceneSpec],
) -> Iterator[Planes]:
    """Every output frame in order: I420 planes at output size, marked."""
    output = OutputFrames(params.size)
    for plan, spec in zip(plans, specs, strict=True):
        renderer = _renderer(params, inputs, plan, spec, len(plans))
        for index in range(plan.frame_count):
            yield output.convert(renderer.render(index))


def _check_stop(should_stop: StopCheck) -> None:
    if should_stop():
        raise Interrupted("preview generation was stopped")


def _shot_spec(reader: SceneReader, params: JobParams, plan: ShotPlan, shots: int) -> SceneSpec:
    framing = CUT_FRAMING[plan.index % len(CUT_FRAMING)] if shots > 1 else 1.0
    seed = (params.seed * 1_000_003 + plan.index * 7919) % 2**63
    return reader.read(plan.prompt, plan.context, seed, framing)


def _renderer(
    params: JobParams, inputs: GenerationInputs, plan: ShotPlan, spec: SceneSpec, shots: int,
) -> ShotRenderer:
    renderer: ShotRenderer
    if inputs.start_image is None:
        size = work_size(params.size)
        renderer = TextShot(spec, size, plan.frame_count, FPS)
    else:
        size = params.size
        renderer = _image_renderer(params, inputs, plan, spec, shots)
    images = [inputs.elements[i].frontal for i in spec.elements if i < len(inputs.elements)]
    if not any(images):
        return renderer
    rng = np.random.default_rng([spec.seed, 404])
    leaves = plan.index == shots - 1 and inputs.end_image is not None
    walks = [ElementWalk(image, size, plan.frame_count, rng, slot, leaves)
             for slot, image in enumerate(images) if image is not None]
    return ElementShot(renderer, walks)


def _image_renderer(
    params: JobParams, inputs: GenerationInputs, plan: ShotPlan, spec: SceneSpec, shots: int,
) -> ShotRenderer:
    """Shot 1 starts on the start image; the last lands on the end image; others cut closer."""
    assert inputs.start_image is not None
    size, frames = params.size, plan.frame_count
    end = None if inputs.end_image is None else cover_crop(inputs.end_image, size)
    if plan.index == 0:
        start = cover_crop(inputs.start_image, size)
        if end is not None and shots == 1:
            return MorphShot(start, end, frames)
        return ImageMotionShot(start, spec.camera, frames, FPS, IMAGE_MOTION)
    if end is not None and plan.index == shots - 1:
        return ReversedShot(ImageMotionShot(end, spec.camera, frames, FPS, IMAGE_MOTION), frames)
    rng = np.random.default_rng([spec.seed, 505])
    focus = (float(rng.uniform(0.3, 0.7)), float(rng.uniform(0.3, 0.7)))
    closer = cover_crop(inputs.start_image, size, zoom=1.6, focus=focus)
    return ImageMotionShot(closer, spec.camera, frames, FPS, IMAGE_MOTION)
