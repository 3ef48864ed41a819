"""The ltx2 engine in this process: cancel between steps, out of GPU memory, kept warm.

Out-of-memory cannot be caused on a CPU, so the tiny transformer raises torch's own
``OutOfMemoryError`` for one call: a fake at the torch seam, not of our classes.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tiny_ltx2 import save_tiny_ltx2

from reelserve.catalog import MODELS
from reelserve.catalog.params import parse_submit
from reelserve.engines import load_engine
from reelserve.engines.base import GenerationInputs
from reelserve.errors import EngineError, Interrupted
from reelserve.settings import Settings

PARAMS = parse_submit(MODELS["kling-3-standard-text2video"],
                      {"prompt": "a cat in the city", "duration": "3"}, random.Random(3))


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    model = save_tiny_ltx2(tmp_path_factory.mktemp("tiny-ltx2"))
    settings = Settings(model_path=str(model), ltx2_long_side=128, ltx2_steps=2)
    yield load_engine("ltx2", settings.engines)


def test_stop_interrupts_between_steps_and_writes_nothing(engine: Any, tmp_path: Path) -> None:
    seen: list[float] = []
    output = tmp_path / "out.mp4"
    with pytest.raises(Interrupted):
        engine.generate(PARAMS, GenerationInputs(), output, seen.append, lambda: bool(seen))
    assert len(seen) == 1 and 0 < seen[0] < 1  # stopped right after the first step
    assert not output.exists()


def test_out_of_memory_fails_the_job_with_the_size_and_the_engine_lives_on(
        engine: Any, tmp_path: Path) -> None:
    import torch

    transformer = engine.pipe.transformer
    forward = transformer.forward

    def exhausted(*args: Any, **kwargs: Any) -> Any:
        transformer.forward = forward  # only this call runs out
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    transformer.forward = exhausted
    with pytest.raises(EngineError) as failed:
        engine.generate(PARAMS, GenerationInputs(), tmp_path / "a.mp4", lambda f: None,
                        lambda: False)
    assert failed.value.message.startswith(
        "out of GPU memory at 128x128 (output 1920x1080), 73 frames, running the plan: cpu")
    assert "peak" in failed.value.message and "transformer gpu/bf16" in failed.value.message
    assert "REELSERVE_LTX2_OFFLOAD=sequential" in failed.value.message
    done: list[float] = []
    engine.generate(PARAMS, GenerationInputs(), tmp_path / "b.mp4", done.append, lambda: False)
    assert done[-1] == 1.0 and (tmp_path / "b.mp4").stat().st_size > 0
