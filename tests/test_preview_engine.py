"""The preview engine end to end: real renders, decoded back with PyAV, checked frame by frame."""

from __future__ import annotations

import dataclasses
import itertools
import os
import threading
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from reelserve.catalog import JobParams, Shot
from reelserve.engines import GenerationInputs, load_engine
from reelserve.engines.base import ElementImages
from reelserve.errors import Interrupted
from reelserve.settings import Settings

Frames = list[npt.NDArray[np.uint8]]
BASE_PROMPT = "A lone hiker on a misty mountain ridge at golden hour, light shafts, slow push-in"


def params(**changes: object) -> JobParams:
    base = JobParams(
        slug="kling-3-standard-text2video",
        prompt=BASE_PROMPT,
        negative_prompt="blur, distort, and low quality",
        duration=3,
        aspect_ratio="1:1",
        cfg_scale=0.5,
        generate_audio=True,
        shot_type="customize",
        seed=1234,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def decode(path: Path) -> tuple[Frames, npt.NDArray[np.float32] | None, float]:
    """Frames (RGB), audio (channels, samples) or None, and the video frame rate."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        rate = float(video.average_rate or 0)
        frames = [np.asarray(frame.to_ndarray(format="rgb24"), np.uint8)
                  for frame in container.decode(video=0)]
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return frames, None, rate
        chunks = [frame.to_ndarray() for frame in container.decode(audio=0)]
    return frames, np.concatenate(chunks, axis=1).astype(np.float32), rate


Render = Callable[..., tuple[Frames, "npt.NDArray[np.float32] | None", float]]


@pytest.fixture(scope="module")
def render(tmp_path_factory: pytest.TempPathFactory) -> Render:
    """Render params with the real engine; identical requests are rendered once."""
    engine = load_engine("preview", Settings().engines)
    cache: dict[JobParams, object] = {}

    def run(job: JobParams, inputs: GenerationInputs | None = None) -> object:
        # Only image-free jobs are cached: PIL images are not hashable.
        if inputs is None and job in cache:
            return cache[job]
        path = tmp_path_factory.mktemp("render") / "out.mp4"
        engine.generate(job, inputs or GenerationInputs(), path, lambda f: None, lambda: False)
        result = decode(path)
        if inputs is None:
            cache[job] = result
        return result

    return run  # type: ignore[return-value]


def mean_abs(a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8]) -> float:
    return float(np.mean(np.abs(a.astype(np.int16) - b.astype(np.int16))))


def psnr(a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8]) -> float:
    """Peak signal-to-noise ratio in dB over the whole frame, PREVIEW mark included."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * float(np.log10(255.0**2 / max(mse, 1e-12)))


def test_registry_builds_the_preview_engine() -> None:
    assert load_engine("preview", Settings().engines).name == "preview"


@pytest.mark.parametrize(
    ("aspect_ratio", "size", "audio"),
    [("16:9", (1920, 1080), True), ("9:16", (1080, 1920), False), ("1:1", (1080, 1080), True)],
)
def test_output_has_contract_size_frame_count_and_audio_track(
    render: Render, aspect_ratio: str, size: tuple[int, int], audio: bool,
) -> None:
    frames, sound, rate = render(params(aspect_ratio=aspect_ratio, generate_audio=audio))
    assert len(frames) == 3 * 24
    assert rate == 24
    assert frames[0].shape == (size[1], size[0], 3)
    assert (sound is not None) is audio
    if sound is not None:
        assert sound.shape[0] == 2
        assert abs(sound.shape[1] - len(frames) * 2000) <= 2000  # within one frame (48 kHz)


def test_frames_are_an_animated_scene_not_noise_or_grey(render: Render) -> None:
    frames, _, _ = render(params())
    first, last = frames[0], frames[-1]
    assert float(first.std()) > 12  # a composed picture, not a flat grey card
    assert mean_abs(first, last) > 2  # the camera moved
    # Not noise: neighbouring pixels are far more alike than random pixels would be.
    assert mean_abs(first[:, 1:], first[:, :-1]) < 6


def test_same_seed_gives_identical_frames_and_audio_other_seed_differs(
    render: Render, tmp_path: Path,
) -> None:
    frames, sound, _ = render(params())
    engine = load_engine("preview", Settings().engines)
    again = tmp_path / "again.mp4"
    engine.generate(params(), GenerationInputs(), again, lambda f: None, lambda: False)
    frames2, sound2, _ = decode(again)
    assert all(np.array_equal(a, b) for a, b in zip(frames, frames2, strict=True))
    assert sound is not None and sound2 is not None
    assert np.array_equal(sound, sound2)
    other, _, _ = render(params(seed=99))
    assert mean_abs(frames[36], other[36]) > 4


def test_negative_prompt_naming_fog_removes_the_fog(render: Render) -> None:
    foggy, _, _ = render(params(prompt="Dense fog over a mountain lake at dawn", cfg_scale=1.0,
                                generate_audio=False))
    clear, _, _ = render(params(prompt="Dense fog over a mountain lake at dawn", cfg_scale=1.0,
                                generate_audio=False, negative_prompt="fog, blur"))
    assert mean_abs(foggy[30], clear[30]) > 3
    # Fog flattens contrast; without it the picture has more of it.
    assert float(clear[30].std()) > float(foggy[30].std())


def test_default_negative_prompt_removes_nothing(render: Render) -> None:
    kept, _, _ = render(params(generate_audio=False))
    bare, _, _ = render(params(generate_audio=False, negative_prompt=""))
    assert all(np.array_equal(a, b) for a, b in zip(kept[::12], bare[::12], strict=True))


def _picture(seed: int, size: tuple[int, int] = (1280, 853)) -> Image.Image:
    rng = np.random.default_rng(seed)
    image = np.zeros((size[1], size[0], 3), np.uint8)
    image[:] = rng.integers(40, 200, 3, dtype=np.uint8)
    for _ in range(12):
        color = tuple(int(c) for c in rng.integers(0, 255, 3))
        center = (int(rng.integers(0, size[0])), int(rng.integers(0, size[1])))
        cv2.circle(image, center, int(rng.integers(40, 220)), color, -1, cv2.LINE_AA)
    return Image.fromarray(image)


def _cover(image: Image.Image, size: tuple[int, int]) -> npt.NDArray[np.uint8]:
    src = np.asarray(image)
    scale = max(size[0] / src.shape[1], size[1] / src.shape[0])
    resized = cv2.resize(src, (round(src.shape[1] * scale), round(src.shape[0] * scale)))
    y0 = (resized.shape[0] - size[1]) // 2
    x0 = (resized.shape[1] - size[0]) // 2
    return np.asarray(resized[y0:y0 + size[1], x0:x0 + size[0]], dtype=np.uint8)


def test_image_to_video_starts_on_start_image_and_ends_on_end_image(render: Render) -> None:
    start, end = _picture(1), _picture(2)
    job = params(slug="kling-3-standard-image2video", aspect_ratio="16:9",
                 prompt="The scene slowly transforms", generate_audio=False,
                 start_image_url="https://example.com/a.png",
                 end_image_url="https://example.com/b.png")
    frames, _, _ = render(job, GenerationInputs(start_image=start, end_image=end))
    want_first, want_last = _cover(start, (1920, 1080)), _cover(end, (1920, 1080))
    assert psnr(frames[0], want_first) >= 30
    assert psnr(frames[-1], want_last) >= 30
    middle = frames[len(frames) // 2]
    # A morph, not a held image: the middle is neither end.
    assert mean_abs(middle, want_first) > 8 and mean_abs(middle, want_last) > 8
    steps = [mean_abs(a, b) for a, b in itertools.pairwise(frames)]
    assert max(steps) < 20  # no hard cut anywhere in a single shot


def _ball_at(x: int) -> npt.NDArray[np.uint8]:
    """The same backdrop with a yellow ball (and a dark spot for the flow to follow) at x."""
    image = np.asarray(_picture(11, (1080, 1080))).copy()
    cv2.circle(image, (x, 540), 120, (250, 220, 30), -1, cv2.LINE_AA)
    cv2.circle(image, (x - 40, 500), 25, (20, 20, 20), -1, cv2.LINE_AA)
    return image


def _yellow(frame: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
    return (frame[..., 0] > 200) & (frame[..., 1] > 170) & (frame[..., 2] < 90)


def test_middle_frames_are_a_flow_morph_not_a_cross_fade(render: Render) -> None:
    start, end = _ball_at(400), _ball_at(540)
    job = params(slug="kling-3-standard-image2video", prompt="The ball rolls along",
                 generate_audio=False, start_image_url="https://example.com/a.png",
                 end_image_url="https://example.com/b.png")
    inputs = GenerationInputs(start_image=Image.fromarray(start), end_image=Image.fromarray(end))
    frames, _, _ = render(job, inputs)
    middle, band = frames[len(frames) // 2], slice(380, 700)  # the rows the ball crosses
    assert mean_abs(middle[band], start[band]) > 4 and mean_abs(middle[band], end[band]) > 4
    fades = [np.asarray(cv2.addWeighted(start, 1 - w, end, w, 0.0), np.uint8)
             for w in np.linspace(0.0, 1.0, 21)]
    assert min(mean_abs(middle[band], fade[band]) for fade in fades) > 3
    # The ball travelled half way, whole; a cross-fade keeps only the lens where both overlap.
    ball = _yellow(middle)
    assert abs(float(np.nonzero(ball)[1].mean()) - 470) < 20
    assert ball.sum() > 0.85 * _yellow(start).sum() > _yellow(fades[10]).sum() / 0.6


def test_image_to_video_moves_after_the_first_frame(render: Render) -> None:
    start = _picture(3)
    job = params(slug="kling-3-standard-image2video", prompt="camera pans right",
                 generate_audio=False, start_image_url="https://example.com/a.png")
    frames, _, _ = render(job, GenerationInputs(start_image=start))
    assert psnr(frames[0], _cover(start, (1080, 1080))) >= 30
    assert mean_abs(frames[0], frames[-1]) > 5


def test_image_to_video_in_several_shots_cuts_and_still_lands_on_the_end_image(
    render: Render,
) -> None:
    start, end = _picture(4), _picture(5)
    job = params(slug="kling-3-standard-image2video", shot_type="intelligent",
                 prompt="Wide view. Then a closer look, static. Finally it settles.",
                 generate_audio=False, start_image_url="https://example.com/a.png",
                 end_image_url="https://example.com/b.png")
    frames, _, _ = render(job, GenerationInputs(start_image=start, end_image=end))
    assert psnr(frames[0], _cover(start, (1080, 1080))) >= 30
    assert psnr(frames[-1], _cover(end, (1080, 1080))) >= 30
    steps = [mean_abs(a, b) for a, b in itertools.pairwise(frames)]
    calm = sorted(steps)[-3]
    assert steps[23] >= calm and steps[47] >= calm  # the two biggest changes are the cuts


def test_every_frame_carries_the_preview_mark(render: Render) -> None:
    frames, _, _ = render(params())
    for frame in frames[::24]:
        corner = frame[-90:, -250:].astype(np.int16)
        assert int((corner.min(axis=2) > 225).sum()) > 200  # white lettering
        assert int((corner.max(axis=2) < 90).sum()) > 200  # on its dark plate


def test_element_tag_puts_the_element_into_the_video(render: Render) -> None:
    start = Image.new("RGB", (1280, 720), (40, 90, 160))
    drawn = np.full((600, 400, 3), 255, np.uint8)  # a red disc on a plain white backdrop
    cv2.circle(drawn, (200, 300), 150, (230, 20, 20), -1)
    base = params(slug="kling-3-standard-image2video", prompt="@Element1 walks past",
                  generate_audio=False, start_image_url="https://example.com/a.png")
    inputs = GenerationInputs(start_image=start,
                              elements=(ElementImages(frontal=Image.fromarray(drawn)),))
    frames, _, _ = render(base, inputs)
    red = [(f[..., 0].astype(int) - f[..., 2] > 120).mean() for f in frames[24:]]
    assert max(red) > 0.01  # the red element shows up as a cut-out


def test_multi_shot_cuts_exactly_on_segment_boundaries(render: Render) -> None:
    job = params(prompt="A journey", duration=9, generate_audio=True,
                 shots=(Shot("Snowy mountains at night, static", 3),
                        Shot("A neon city street in the rain, static", 3),
                        Shot("Desert dunes at sunset, static", 3)))
    frames, sound, _ = render(job)
    assert len(frames) == 9 * 24
    steps = [mean_abs(a, b) for a, b in itertools.pairwise(frames)]
    cuts = sorted(range(len(steps)), key=steps.__getitem__)[-2:]
    assert sorted(cuts) == [71, 143]  # the change is between frames 71/72 and 143/144
    calm = max(s for i, s in enumerate(steps) if i not in (71, 143))
    assert min(steps[71], steps[143]) > 3 * calm
    assert sound is not None and abs(sound.shape[1] / 48_000 - 9.0) < 0.05


def test_intelligent_shot_type_cuts_a_multi_sentence_prompt(render: Render) -> None:
    job = params(prompt="A forest at dawn. A city at night with neon signs. A calm sea at noon.",
                 shot_type="intelligent", generate_audio=False)
    frames, _, _ = render(job)
    steps = [mean_abs(a, b) for a, b in itertools.pairwise(frames)]
    assert steps[23] > 10 and steps[47] > 10  # cuts at 1 s and 2 s of a 3 s video


def test_quoted_text_is_spoken_in_the_audio(render: Render) -> None:
    silent, plain, _ = render(params(prompt="A voice over a misty lake"))
    spoken, speech, _ = render(params(prompt='A voice over a misty lake: "Hello there, welcome '
                                             'home."'))
    assert plain is not None and speech is not None
    assert all(np.array_equal(a, b) for a, b in zip(silent[::24], spoken[::24], strict=True))
    # Each soundtrack is brought to -16 LUFS with its own gain: match them on the 0.3 s
    # before the first line starts, then what is left is the voice.
    lead = slice(0, 14_400)
    gain = float(np.sum(speech[:, lead] * plain[:, lead]) / np.sum(plain[:, lead] ** 2))
    extra = speech - gain * plain
    energy = [float(np.sqrt(np.mean(extra[:, k:k + 4800] ** 2)))
              for k in range(0, extra.shape[1] - 4800, 4800)]
    assert max(energy) > 0.03  # speech lands in some 0.1 s windows
    assert min(energy) < 0.01  # and not all over the clip


def test_should_stop_interrupts_and_leaves_no_file(tmp_path: Path) -> None:
    engine = load_engine("preview", Settings().engines)
    calls = {"n": 0}

    def stop_after_a_few() -> bool:
        calls["n"] += 1
        return calls["n"] > 10

    path = tmp_path / "stopped.mp4"
    seen: list[float] = []
    with pytest.raises(Interrupted):
        engine.generate(params(), GenerationInputs(), path, seen.append, stop_after_a_few)
    assert not path.exists()


def test_progress_is_reported_and_ends_at_one(tmp_path: Path) -> None:
    engine = load_engine("preview", Settings().engines)
    seen: list[float] = []
    engine.generate(params(generate_audio=False, aspect_ratio="1:1", cfg_scale=0.2),
                    GenerationInputs(), tmp_path / "p.mp4", seen.append, lambda: False)
    assert len(seen) >= 10
    assert seen[0] <= 0.1  # reported as frames are rendered, not only at the end
    assert seen == sorted(seen) and seen[-1] == 1.0


def _thread_nice_values() -> dict[int, int]:
    """Each thread of this process and its nice value, read from /proc (Linux)."""
    values = {}
    for task in Path("/proc/self/task").iterdir():
        fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        values[int(task.name)] = int(fields[16])  # field 19 of stat: nice
    return values


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads threads from /proc")
def test_rendering_threads_yield_to_the_encoder_and_opencv_stays_on_them(
    tmp_path: Path,
) -> None:
    """While a job runs, its helper threads sit at the lowest priority and OpenCV
    keeps each call on its calling thread; afterwards both are as before."""
    engine = load_engine("preview", Settings().engines)
    threads_before, base = cv2.getNumThreads(), os.nice(0)
    seen: list[tuple[int, dict[int, int]]] = []

    def should_stop() -> bool:
        seen.append((cv2.getNumThreads(), _thread_nice_values()))
        return False

    engine.generate(params(duration=3), GenerationInputs(), tmp_path / "out.mp4",
                    lambda f: None, should_stop)
    during = seen[1:]  # the first check comes before any thread starts
    assert during and all(threads == 1 for threads, _ in during)
    lowest = min(base + 19, 19)
    assert all(lowest in values.values() for _, values in during), during[:2]
    assert all(values[threading.get_native_id()] == base for _, values in seen)
    assert cv2.getNumThreads() == threads_before
    assert _thread_nice_values()[threading.get_native_id()] == base
