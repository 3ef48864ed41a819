"""Preview engine speed and memory, measured side by side in one run.

    .venv/bin/python bench/preview.py [--rounds 3]

1. A 15 s 16:9 1080p clip with audio, each round in a fresh child process: the
   job's wall time (target < 10 s), the child's wall time including its imports,
   and its peak RSS from ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` (target <= 1.5 GiB).
2. (a) the whole preview job for a 5 s 16:9 1080p clip with audio (``generate``:
   shot planning, soundtrack, painting, composing, encoding, muxing), against
   (b) encoding the same 120 frames of one static image (the job's first frame)
   with the same encoder settings through ``Mp4Writer.write`` (RGB in, converted
   to I420 with OpenCV). Rounds alternate a, b, b0, c, c0; the medians and their
   ratio are printed (target a/b <= 1.5). (b0) is (b) with the RGB to yuv420p
   conversion done by FFmpeg's swscale, as ``Mp4Writer`` did before: the floor
   the earlier figures in bench/RESULTS.md were measured against. (c) re-encodes
   the job's own 120 frames, decoded into memory beforehand, with the same
   settings. Decoded frames carry the first encode's coding noise, which x264
   spends bits and time on again, so (c) overstates what encoding the job's
   picture costs; (c0) encodes the frames exactly as the engine hands them to
   the encoder (I420, rendered into memory beforehand): the floor under (a).
   (b1) is (b) with the first frame as rendered instead of as decoded: x264 has
   already quantized a decoded frame at this CRF, so its repeats code as almost
   nothing; the same picture as rendered keeps x264 refining it frame after
   frame. It shows how much of (c0)/(b) is that, not motion.

The machine's load is printed before and after: on a shared machine only the
ratios of one run mean much.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from reelserve.catalog import JobParams
from reelserve.engines import GenerationInputs, load_engine
from reelserve.engines.preview.engine import _frame_stream, _shot_spec
from reelserve.engines.preview.prompt import SceneReader
from reelserve.engines.preview.shots import plan_shots
from reelserve.media.encode import REPEATABLE_X264, Mp4Writer
from reelserve.settings import Settings

JOB = JobParams(
    slug="kling-3-standard-text2video",
    prompt="A lone traveler on misty mountains at golden hour, light shafts, slow push-in",
    negative_prompt="blur, distort, and low quality",
    duration=5,
    aspect_ratio="16:9",
    cfg_scale=0.5,
    generate_audio=True,
    shot_type="customize",
    seed=42,
)
LONG_SECONDS = 15


def run_job(job: JobParams, path: Path) -> float:
    """Seconds for the whole preview job, as a worker would run it."""
    engine = load_engine("preview", Settings().engines)
    began = time.perf_counter()
    engine.generate(job, GenerationInputs(), path, lambda f: None, lambda: False)
    return time.perf_counter() - began


def decoded_frames(path: Path) -> list[npt.NDArray[np.uint8]]:
    with av.open(str(path)) as container:
        return [np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)
                for frame in container.decode(video=0)]


def encode(frames: list[npt.NDArray[np.uint8]], path: Path) -> float:
    """Seconds to encode ``frames`` with the engine's encoder settings."""
    height, width = frames[0].shape[:2]
    began = time.perf_counter()
    with Mp4Writer(path, width, height, frame_count=len(frames)) as writer:
        for frame in frames:
            writer.write(frame.copy())  # the engine hands the encoder a fresh array too
    return time.perf_counter() - began


def rendered_frames(job: JobParams) -> list[npt.NDArray[np.uint8]]:
    """The job's frames as the engine hands them to the encoder: marked I420 planes."""
    plans = plan_shots(job)
    reader = SceneReader(job.negative_prompt, job.cfg_scale)
    specs = [_shot_spec(reader, job, plan, len(plans)) for plan in plans]
    return list(_frame_stream(job, GenerationInputs(), plans, specs))


def encode_i420(frames: list[npt.NDArray[np.uint8]], path: Path) -> float:
    """Seconds to encode I420 ``frames`` with the engine's encoder settings."""
    width, height = frames[0].shape[1], frames[0].shape[0] * 2 // 3
    began = time.perf_counter()
    with Mp4Writer(path, width, height, frame_count=len(frames)) as writer:
        for planes in frames:
            writer.write_i420(planes)
    return time.perf_counter() - began


def encode_with_swscale(frames: list[npt.NDArray[np.uint8]], path: Path) -> float:
    """Seconds to encode ``frames`` with the same x264 settings, converting with swscale."""
    height, width = frames[0].shape[:2]
    began = time.perf_counter()
    with av.open(str(path), mode="w", options={"movflags": "+faststart"}) as container:
        video = container.add_stream("libx264", rate=24)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"crf": "23", "preset": "veryfast", "x264-params": REPEATABLE_X264}
        for index, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            frame.pts = index
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
    return time.perf_counter() - began


def long_clip_in_child(path: Path) -> tuple[float, float]:
    """(job seconds, process seconds) for the 15 s clip rendered by a fresh interpreter."""
    began = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--child", str(path)],
                          capture_output=True, text=True, check=True)
    return float(done.stdout.split()[-1]), time.perf_counter() - began


def median_line(name: str, values: list[float], unit: str = "s") -> str:
    shown = ", ".join(f"{v:.2f}" for v in values)
    return f"{name}: median {statistics.median(values):.2f} {unit}  ({shown})"


def bench_long_clip(out: Path, rounds: int) -> None:
    """Run first, while this process is small: a forked child's peak RSS counts the parent's."""
    longs, processes = [], []
    for _ in range(rounds):
        job_s, process_s = long_clip_in_child(out / "long.mp4")
        longs.append(job_s)
        processes.append(process_s)
    peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    print(f"{LONG_SECONDS} s 16:9 1080p with audio, {rounds} child processes")
    print("   " + median_line("job wall time", longs) + "  (target < 10 s)")
    print("   " + median_line("child process wall time, with imports", processes))
    print(f"   peak RSS over the children: {peak_gib:.2f} GiB  (target <= 1.5 GiB)")


def bench_against_static(out: Path, rounds: int) -> None:
    jobs, statics, swscales, reencodes, rendered, firsts = [], [], [], [], [], []
    for _ in range(rounds):
        jobs.append(run_job(JOB, out / "job.mp4"))
        frames = decoded_frames(out / "job.mp4")
        statics.append(encode([frames[0]] * len(frames), out / "static.mp4"))
        swscales.append(encode_with_swscale([frames[0]] * len(frames), out / "swscale.mp4"))
        reencodes.append(encode(frames, out / "again.mp4"))
        del frames
        planes = rendered_frames(JOB)
        rendered.append(encode_i420(planes, out / "rendered.mp4"))
        firsts.append(encode_i420([planes[0]] * len(planes), out / "first.mp4"))
        del planes
    print(f"5 s 16:9 1080p with audio, {rounds} rounds")
    print("   " + median_line("(a) whole preview job", jobs))
    print("   " + median_line("(b) static image, same encoder", statics))
    print("   " + median_line("(b0) static image, swscale conversion", swscales))
    print("   " + median_line("(b1) static image, the first frame as rendered", firsts))
    print("   " + median_line("(c) the job's own frames decoded, same encoder", reencodes))
    print("   " + median_line("(c0) the job's frames as rendered, same encoder", rendered))
    ratio = statistics.median(jobs) / statistics.median(statics)
    print(f"   (a)/(b) = {ratio:.2f}  (target <= 1.5)")
    old_floor = statistics.median(jobs) / statistics.median(swscales)
    print(f"   (a)/(b0) = {old_floor:.2f}  (against the floor of the earlier figures)")
    floor = statistics.median(reencodes) / statistics.median(statics)
    print(f"   (c)/(b) = {floor:.2f}  (re-encoding the decoded frames)")
    floor = statistics.median(rendered) / statistics.median(statics)
    print(f"   (c0)/(b) = {floor:.2f}  (encoding the rendered frames alone)")
    first = statistics.median(firsts) / statistics.median(statics)
    print(f"   (b1)/(b) = {first:.2f}  (the same picture, as rendered against as decoded)")
    above = statistics.median(jobs) / statistics.median(rendered)
    print(f"   (a)/(c0) = {above:.2f}  (the whole job against encoding its frames)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(run_job(dataclasses.replace(JOB, duration=LONG_SECONDS), args.child))
        return
    print("load average before: {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
    with tempfile.TemporaryDirectory() as folder:
        bench_long_clip(Path(folder), args.rounds)
        bench_against_static(Path(folder), args.rounds)
    print("load average after: {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
