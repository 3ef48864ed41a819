"""LTX-2 engine overhead outside the pipeline call, against a raw x264 encode of the same frames.

    .venv/bin/python bench/ltx2.py [--rounds 3]

Loads the engine on the tiny random-weight model (tests/tiny_ltx2.py) and replaces
only the pipeline call (``Ltx2Engine._run_stages``, a declared seam) with a fixed
output of the real size: 121 frames at 1920x1088 in [0, 1] and 24 kHz stereo audio,
what the two-stage recipe returns for a 5 s 16:9 clip. Then, alternating in each round:

(a) ``Ltx2Engine.generate`` for that 5 s 1080p request: everything outside the
    pipeline call (crop to 1920x1080, cut to 120 frames, frames to uint8 and I420 on a
    thread ahead of the encoder, audio resample to 48 kHz and crossfade, H.264 encode,
    AAC, mux);
(b) a raw encode of the same 120 cropped frames with the same ``Mp4Writer`` settings,
    no audio;
(c) the frame conversion the engine did before ``frames.py`` (the whole clip widened to
    float32 and converted to uint8 at once, then cropped), then the same encode as (b),
    no audio: what (a) replaced, measured alongside.

The medians, a/b and c/b are printed, of wall time (the target is a/b <= 1.3) and of this
process's CPU time (all its threads: the work done, less sensitive to other load on a
shared machine), with ``os.getloadavg()`` before and after. Speed is never asserted in
tests; figures go to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from tiny_ltx2 import save_tiny_ltx2

from reelserve.catalog import MODELS
from reelserve.catalog.params import parse_submit
from reelserve.engines import load_engine
from reelserve.engines.base import GenerationInputs
from reelserve.media.encode import Mp4Writer
from reelserve.settings import Settings

FRAMES, RENDER, OUTPUT = 121, (1920, 1088), (1920, 1080)


class FixedOutput:
    """What the pipeline returns (frames as a (1, F, 3, H, W) tensor in [0, 1], audio)."""

    def __init__(self, torch: Any) -> None:
        width, height = RENDER
        generator = torch.Generator().manual_seed(0)
        # A moving gradient with grain: x264 has real motion and texture to code.
        ys = torch.linspace(0, 1, height).view(1, 1, height, 1)
        xs = torch.linspace(0, 1, width).view(1, 1, 1, width)
        t = torch.arange(FRAMES).view(FRAMES, 1, 1, 1) / FRAMES
        channels = [((xs + t) % 1.0) * ys, ((ys - t) % 1.0) * (1 - xs), (xs * ys + t) % 1.0]
        picture = torch.cat([c.expand(FRAMES, 1, height, width) for c in channels], dim=1)
        grain = torch.rand(FRAMES, 3, height, width, generator=generator) * 0.08
        self.frames = [(picture * 0.92 + grain).to(torch.float16)]
        samples = round(FRAMES / 24 * 24_000)
        self.audio = [torch.sin(torch.arange(samples) / 24_000 * 2 * torch.pi * 440)
                      .repeat(2, 1) * 0.3]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = Settings(model_path=str(save_tiny_ltx2(root / "m")))
        engine: Any = load_engine("ltx2", settings.engines)
        fixed = FixedOutput(engine.torch)
        engine._run_stages = lambda *args, **kwargs: fixed  # the pipeline call, replaced
        params = parse_submit(MODELS["kling-3-standard-text2video"],
                              {"prompt": "a lighthouse at night", "duration": "5"},
                              random.Random(1))
        left, top = (RENDER[0] - OUTPUT[0]) // 2, (RENDER[1] - OUTPUT[1]) // 2
        frames = (fixed.frames[0][:120].float().mul(255).add(0.5).clamp(0, 255)
                  .to(engine.torch.uint8).permute(0, 2, 3, 1).numpy())
        frames = np.ascontiguousarray(frames[:, top:top + OUTPUT[1], left:left + OUTPUT[0]])
        load_before = os.getloadavg()
        engine_s: list[tuple[float, float]] = []
        raw_s: list[tuple[float, float]] = []
        whole_s: list[tuple[float, float]] = []
        for index in range(rounds):
            started = (time.perf_counter(), time.process_time())
            engine.generate(params, GenerationInputs(), root / f"a{index}.mp4",
                            lambda f: None, lambda: False)
            engine_s.append(_since(started))
            started = (time.perf_counter(), time.process_time())
            with Mp4Writer(root / f"b{index}.mp4", *OUTPUT, frame_count=120) as writer:
                for frame in frames:
                    writer.write(frame)
            raw_s.append(_since(started))
            started = (time.perf_counter(), time.process_time())
            _whole_clip_then_encode(engine.torch, fixed, root / f"c{index}.mp4")
            whole_s.append(_since(started))
            print(f"round {index + 1}: (a) engine outside the pipeline {_pair(engine_s[-1])}, "
                  f"(b) raw x264 {_pair(raw_s[-1])}, (c) whole-clip conversion + x264 "
                  f"{_pair(whole_s[-1])}", flush=True)
    a, b, c = (_median(engine_s, 0), _median(raw_s, 0), _median(whole_s, 0))
    a_cpu, b_cpu, c_cpu = (_median(engine_s, 1), _median(raw_s, 1), _median(whole_s, 1))
    print(f"5 s 1080p clip, medians of {rounds}: (a) outside the pipeline {a:.2f} s, "
          f"(b) raw x264 of the same frames {b:.2f} s, (c) {c:.2f} s; "
          f"a/b {a / b:.2f} (target <= 1.3), c/b {c / b:.2f}; "
          f"cpu (a) {a_cpu:.2f} s, (b) {b_cpu:.2f} s, (c) {c_cpu:.2f} s: "
          f"a/b {a_cpu / b_cpu:.2f}, c/b {c_cpu / b_cpu:.2f}")
    print("load average (1, 5, 15 min): before "
          + ", ".join(f"{x:.2f}" for x in load_before) + "; after "
          + ", ".join(f"{x:.2f}" for x in os.getloadavg()))


def _whole_clip_then_encode(torch: Any, fixed: FixedOutput, path: Path) -> None:
    """(c): the engine's conversion before frames.py, then the encode of (b)."""
    video = (fixed.frames[0].float().mul(255.0).add_(0.5).clamp_(0, 255).to(torch.uint8)
             .permute(0, 2, 3, 1).contiguous().numpy())
    left, top = (RENDER[0] - OUTPUT[0]) // 2, (RENDER[1] - OUTPUT[1]) // 2
    frames = np.ascontiguousarray(video[:120, top:top + OUTPUT[1], left:left + OUTPUT[0]])
    with Mp4Writer(path, *OUTPUT, frame_count=120) as writer:
        for frame in frames:
            writer.write(frame)


def _pair(measured: tuple[float, float]) -> str:
    return f"{measured[0]:.2f} s (cpu {measured[1]:.2f} s)"


def _median(measured: list[tuple[float, float]], which: int) -> float:
    return statistics.median(m[which] for m in measured)


def _since(started: tuple[float, float]) -> tuple[float, float]:
    return time.perf_counter() - started[0], time.process_time() - started[1]


if __name__ == "__main__":
    main()
