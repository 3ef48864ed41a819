"""Longer preview renders, each in its own process: frame counts for 5 s and 15 s, the
container format, the soundtrack's loudness, and a peak memory that does not grow with
the duration because frames stream into the encoder."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest

from reelserve.engines.preview.loudness import integrated_loudness

# Renders one clip and prints the process's peak RSS (KiB on Linux).
CHILD = """
import resource, sys
from pathlib import Path
from reelserve.catalog import JobParams
from reelserve.engines import GenerationInputs, load_engine
from reelserve.settings import Settings
job = JobParams(slug="kling-3-standard-text2video", negative_prompt="", aspect_ratio="1:1",
                prompt="Rain over a neon city street at night, slow pan left", seed=21,
                duration=int(sys.argv[1]), cfg_scale=0.5, generate_audio=True,
                shot_type="customize")
load_engine("preview", Settings().engines).generate(job, GenerationInputs(), Path(sys.argv[2]),
                                            lambda f: None, lambda: False)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""
DURATIONS = (5, 15)


@dataclass(frozen=True)
class Clip:
    path: Path
    peak_rss_kib: int
    frames: int
    audio: npt.NDArray[np.float32]


def _render_in_child(seconds: int, path: Path) -> Clip:
    done = subprocess.run([sys.executable, "-c", CHILD, str(seconds), str(path)],
                          capture_output=True, text=True, check=True, timeout=150)
    with av.open(str(path)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    with av.open(str(path)) as container:
        audio = np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)
    audio = audio.astype(np.float32)
    return Clip(path, int(done.stdout.split()[-1]), frames, audio)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Clip]:
    folder = tmp_path_factory.mktemp("long")
    return {s: _render_in_child(s, folder / f"{s}s.mp4") for s in DURATIONS}


@pytest.mark.parametrize("seconds", DURATIONS)
def test_frame_count_and_audio_length_follow_the_duration(
    clips: dict[int, Clip], seconds: int,
) -> None:
    clip = clips[seconds]
    assert clip.frames == seconds * 24
    assert clip.audio.shape[0] == 2
    assert abs(clip.audio.shape[1] - clip.frames * 2000) <= 2000  # within one frame


def test_container_is_h264_yuv420p_faststart_with_aac_stereo(clips: dict[int, Clip]) -> None:
    path = clips[5].path
    with av.open(str(path)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert video.codec_context.name == "h264"
        assert video.codec_context.pix_fmt == "yuv420p"
        assert float(video.average_rate or 0) == 24
        assert audio.codec_context.name == "aac"
        assert audio.codec_context.sample_rate == 48_000 and audio.channels == 2
    head = path.read_bytes()
    assert 0 <= head.find(b"moov") < head.find(b"mdat")  # faststart: the index comes first


@pytest.mark.parametrize("seconds", DURATIONS)
def test_soundtrack_is_near_minus_16_lufs_without_clipping(
    clips: dict[int, Clip], seconds: int,
) -> None:
    audio = clips[seconds].audio
    assert abs(integrated_loudness(audio) + 16.0) < 1.0
    assert float(np.abs(audio).max()) < 1.0


def test_peak_memory_does_not_grow_with_duration(clips: dict[int, Clip]) -> None:
    # Holding the 240 extra 1080x1080 frames would cost ~0.8 GiB; streaming costs nothing.
    grown_mib = (clips[15].peak_rss_kib - clips[5].peak_rss_kib) / 1024
    assert grown_mib < 120
