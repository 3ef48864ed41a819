"""The declared test seam: an engine that sleeps, fails or crashes on purpose.

It is selected with ``--engine fixture_engines:create_engine`` (tests put this
directory on PYTHONPATH). Directives in the prompt choose the behaviour:

- ``sleep=S``: take S seconds, reporting progress and honouring the stop flag;
- ``fail``: raise an engine error;
- ``crash-until=N:PATH``: SIGKILL its own process while PATH counts fewer than N
  attempts (PATH is a counter file the test reads afterwards);
- ``report-voices=PATH``: write the voices it was given (id, pitch, samples) to PATH.

Whatever it does not refuse, it writes as a real MP4 of the contract's size,
frame count and audio track, with frames that change over time.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import numpy as np

from reelserve.catalog import JobParams
from reelserve.engines.base import GenerationInputs, ProgressCallback, StopCheck
from reelserve.errors import EngineError, Interrupted
from reelserve.media.encode import AUDIO_RATE, Mp4Writer
from reelserve.settings_sections import CustomEngineSettings


class FixtureEngine:
    name = "fixture"

    def check_inputs(self, params: JobParams, inputs: GenerationInputs) -> None:
        if params.start_image_url and inputs.start_image is None:
            raise EngineError("start image missing")

    def generate(self, params: JobParams, inputs: GenerationInputs, output_path: Path,
                 progress: ProgressCallback, should_stop: StopCheck) -> None:
        prompt = params.prompt
        crash = re.search(r"crash-until=(\d+):(\S+)", prompt)
        if crash:
            counter = Path(crash.group(2))
            seen = int(counter.read_text()) if counter.exists() else 0
            counter.write_text(str(seen + 1))
            if seen + 1 < int(crash.group(1)):
                time.sleep(0.3)
                os.kill(os.getpid(), signal.SIGKILL)
        report = re.search(r"report-voices=(\S+)", prompt)
        if report:  # what reached the engine, for the test to read
            Path(report.group(1)).write_text(json.dumps([
                {"voice_id": v.voice_id, "pitch_hz": v.pitch_hz, "samples": len(v.pcm) // 2}
                for v in inputs.voices]))
        if "fail" in prompt.split():
            raise EngineError("the fixture engine was told to fail")
        sleep = re.search(r"sleep=([\d.]+)", prompt)
        total = float(sleep.group(1)) if sleep else 0.0
        steps = 10
        for step in range(steps):
            if should_stop():
                raise Interrupted("interrupted")
            time.sleep(total / steps)
            progress((step + 1) / steps / 2)
        self._write(params, inputs, output_path, progress)

    def _write(self, params: JobParams, inputs: GenerationInputs, output_path: Path,
               progress: ProgressCallback) -> None:
        width, height = params.size
        audio = None
        if params.generate_audio:
            t = np.arange(params.duration * AUDIO_RATE) / AUDIO_RATE
            tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            audio = np.stack([tone, tone])
        frame = np.zeros((height, width, 3), np.uint8)
        if inputs.start_image is not None:
            frame[:] = np.asarray(inputs.start_image.resize((width, height)))
        with Mp4Writer(output_path, width, height, frame_count=params.frame_count,
                       audio=audio, preset="ultrafast") as writer:
            for index in range(params.frame_count):
                moving = frame.copy()
                x = (index * 16) % (width - 64)
                moving[:64, x:x + 64] = 255
                writer.write(moving)
                progress(0.5 + (index + 1) / params.frame_count / 2)


def create_engine(settings: CustomEngineSettings) -> FixtureEngine:
    return FixtureEngine()
