"""The uint8 compositor, I420 output frames and the encoder's I420 and pending-audio paths,
checked against straightforward float and FFmpeg references."""

from __future__ import annotations

import threading
from concurrent.futures import CancelledError, Future
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt
import pytest

from reelserve.engines.preview.camera import CameraPose, layer_matrix
from reelserve.engines.preview.canvas import Canvas, Layer
from reelserve.engines.preview.compositor import Compositor
from reelserve.engines.preview.frames import OutputFrames
from reelserve.engines.preview.spec import SceneSpec
from reelserve.engines.preview.textscene import TextShot
from reelserve.media.encode import AUDIO_RATE, Mp4Writer, rgb_to_i420

Rgb = npt.NDArray[np.uint8]
VIEW = (320, 180)


def float_over(layers: list[Layer], canvas: tuple[int, int], pose: CameraPose) -> Rgb:
    """The reference: every layer warped over the whole view and blended in float."""
    out = np.zeros((VIEW[1], VIEW[0], 3), np.float32)
    for layer in layers:
        matrix = layer_matrix(pose, layer.nearness, canvas, VIEW)
        rgba = layer.rgba.astype(np.float32)
        alpha = rgba[..., 3:] / 255.0
        premultiplied = np.concatenate([rgba[..., :3] * alpha, alpha * 255.0], axis=2)
        warped = cv2.warpAffine(premultiplied, matrix, VIEW, flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)
        out = warped[..., :3] + out * (1.0 - warped[..., 3:] / 255.0)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("environments", [("mountains",), ("city", "sea"), ("forest", "temple"),
                                          ("desert",), ("sea",)])
@pytest.mark.parametrize("pose", [CameraPose(), CameraPose(zoom=1.2, truck_x=0.1, roll=2.0),
                                  CameraPose(zoom=1.05, pan_y=0.06, truck_y=-0.1)])
def test_uint8_compositing_matches_a_float_over_of_every_layer(
    environments: tuple[str, ...], pose: CameraPose,
) -> None:
    spec = SceneSpec(palette="dusk", environments=environments,
                     subjects=("figure", "boat", "lighthouse"), seed=11)
    shot = TextShot(spec, VIEW, 24, 24)
    expected = float_over(shot.layers, shot.canvas.size, pose)
    composed = Compositor(shot.layers, shot.canvas.size, VIEW).compose(pose)
    error = np.abs(composed.astype(np.int16) - expected.astype(np.int16))
    # Rounding once per layer in uint8: never more than a few levels anywhere.
    assert float(error.mean()) < 0.6
    assert int(error.max()) <= 4


def test_a_layer_is_blended_only_where_it_reaches_and_still_covers_the_view_bottom() -> None:
    canvas = Canvas(*VIEW)
    ground = np.zeros((canvas.height, canvas.width, 4), np.uint8)
    ground[int(canvas.y(0.8)):] = (200, 10, 10, 255)
    sky = np.full((canvas.height, canvas.width, 4), (10, 10, 200, 255), np.uint8)
    compositor = Compositor([Layer(sky, 0.0), Layer(ground, 1.0)], canvas.size, VIEW)
    frame = compositor.compose(CameraPose(zoom=1.3, truck_y=-0.05))
    assert tuple(frame[0, 0]) == (10, 10, 200)
    assert tuple(frame[-1, -1]) == (200, 10, 10)


def test_output_frames_upscale_in_i420_like_rgb_upscaled_then_converted() -> None:
    shot = TextShot(SceneSpec(palette="sunset", environments=("sea", "mountains"), seed=2),
                    (640, 360), 24, 24)
    small = shot.render(5)
    planes = OutputFrames((1920, 1080)).convert(small)
    reference = cv2.resize(small, (1920, 1080), interpolation=cv2.INTER_LINEAR)
    decoded = cv2.cvtColor(planes, cv2.COLOR_YUV2RGB_I420)
    away_from_mark = (slice(0, 900), slice(0, 1500))
    error = np.abs(decoded[away_from_mark].astype(np.int16)
                   - reference[away_from_mark].astype(np.int16))
    assert float(error.mean()) < 1.5


def test_rgb_conversion_uses_ffmpegs_default_matrix() -> None:
    rgb = np.zeros((64, 64, 3), np.uint8)
    rgb[:, :16] = (255, 255, 255)
    rgb[:, 16:32] = (200, 100, 50)
    rgb[:, 32:48] = (20, 180, 90)
    ours = rgb_to_i420(rgb)
    ffmpeg = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    assert int(np.abs(ours.astype(np.int16) - ffmpeg.to_ndarray().astype(np.int16)).max()) <= 1


def test_writer_takes_i420_planes_and_a_soundtrack_that_arrives_late(tmp_path: Path) -> None:
    width, height, frames = 128, 96, 12
    soundtrack: Future[npt.NDArray[np.float32]] = Future()
    tone = np.sin(np.arange(frames * AUDIO_RATE // 24) * 2 * np.pi * 440 / AUDIO_RATE)
    path = tmp_path / "late.mp4"
    with Mp4Writer(path, width, height, frame_count=frames, audio=soundtrack) as writer:
        for index in range(frames):
            rgb = np.full((height, width, 3), (index * 20, 80, 160), np.uint8)
            writer.write_i420(rgb_to_i420(rgb))
            if index == 8:  # the soundtrack finishes while the video is being encoded
                soundtrack.set_result(np.stack([tone, tone]).astype(np.float32) * 0.5)
    with av.open(str(path)) as container:
        video = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    with av.open(str(path)) as container:
        audio = np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)
    assert len(video) == frames
    assert abs(int(video[-1][0, 0, 0]) - 220) <= 6
    assert audio.shape[1] >= frames * AUDIO_RATE // 24
    assert 0.3 < float(np.abs(audio[:, 4000:8000]).max()) < 0.6


def test_writer_refuses_planes_of_the_wrong_shape(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="I420 frame"), \
            Mp4Writer(tmp_path / "bad.mp4", 64, 48, frame_count=1) as writer:
        writer.write_i420(np.zeros((48, 64), np.uint8))
    assert not (tmp_path / "bad.mp4").exists()


def _tone_file(path: Path, audio: npt.NDArray[np.float32] | Future[npt.NDArray[np.float32]],
               late: npt.NDArray[np.float32] | None = None, arrives_after: int = 0) -> bytes:
    """A 48-frame clip; ``late``, if given, is set on ``audio`` after frame ``arrives_after``."""
    frames = 48
    with Mp4Writer(path, 128, 96, frame_count=frames, audio=audio) as writer:
        for index in range(frames):
            writer.write_i420(rgb_to_i420(np.full((96, 128, 3), (index * 5, 80, 160), np.uint8)))
            if late is not None and index == arrives_after:
                assert isinstance(audio, Future)
                audio.set_result(late)
    return path.read_bytes()


def test_the_file_does_not_depend_on_when_the_soundtrack_arrives(tmp_path: Path) -> None:
    """Audio is encoded on the writer's own thread: however late it comes, the bytes agree."""
    tone = np.sin(np.arange(48 * AUDIO_RATE // 24) * 2 * np.pi * 440 / AUDIO_RATE)
    audio = (np.stack([tone, tone]) * 0.5).astype(np.float32)
    at_once = _tone_file(tmp_path / "now.mp4", audio)
    for after in (0, 30, 47):
        late = _tone_file(tmp_path / f"late{after}.mp4", Future(), audio, after)
        assert late == at_once, f"the soundtrack arriving after frame {after} changed the file"
    with av.open(str(tmp_path / "now.mp4")) as container:
        assert [s.type for s in container.streams] == ["video", "audio"]
        decoded = np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)
    assert 0.3 < float(np.abs(decoded[:, 4000:8000]).max()) < 0.6


def test_a_failed_soundtrack_fails_the_file_and_leaves_nothing(tmp_path: Path) -> None:
    threads = threading.active_count()
    soundtrack: Future[npt.NDArray[np.float32]] = Future()
    soundtrack.set_exception(RuntimeError("speech synthesis failed"))
    path = tmp_path / "failed.mp4"
    with pytest.raises(RuntimeError, match="speech synthesis failed"), \
            Mp4Writer(path, 64, 48, frame_count=2, audio=soundtrack) as writer:
        for _ in range(2):
            writer.write_i420(np.zeros((72, 64), np.uint8))
    assert not path.exists()
    assert threading.active_count() == threads


def test_an_abandoned_writer_cancels_its_pending_soundtrack(tmp_path: Path) -> None:
    threads = threading.active_count()
    soundtrack: Future[npt.NDArray[np.float32]] = Future()
    path = tmp_path / "abandoned.mp4"
    with pytest.raises(KeyError), Mp4Writer(path, 64, 48, frame_count=5, audio=soundtrack) as w:
        w.write_i420(np.zeros((72, 64), np.uint8))
        raise KeyError("the job was stopped")
    assert soundtrack.cancelled()
    with pytest.raises(CancelledError):
        soundtrack.result()
    assert not path.exists()
    assert threading.active_count() == threads
