"""An engine that does nothing but write an empty file: for measuring the queue alone."""

from __future__ import annotations

from pathlib import Path

from reelserve.catalog import JobParams
from reelserve.engines.base import GenerationInputs, ProgressCallback, StopCheck
from reelserve.settings_sections import CustomEngineSettings


class NoopEngine:
    name = "noop"

    def check_inputs(self, params: JobParams, inputs: GenerationInputs) -> None:
        pass

    def generate(self, params: JobParams, inputs: GenerationInputs, output_path: Path,
                 progress: ProgressCallback, should_stop: StopCheck) -> None:
        output_path.write_bytes(b"")


def create_engine(settings: CustomEngineSettings) -> NoopEngine:
    return NoopEngine()
