"""`reelserve generate` in a subprocess against a real server: videos, progress, exit codes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from conftest import T2V, Service, free_port, make_service, png_bytes


@pytest.fixture(scope="module")
def cli_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    svc = make_service(tmp_path_factory.mktemp("cli"), rate_limit=0, lease_s=2)
    yield svc
    svc.stop()


def _env(service: Service, key: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELSERVE_")}
    env["REELSERVE_SERVER"] = service.base_url
    env["REELSERVE_API_KEY"] = service.api_key if key is None else key
    return env


def _generate(service: Service, *args: str, key: str | None = None,
              cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reelserve", "generate", *args],
                          env=_env(service, key), capture_output=True, text=True, cwd=cwd,
                          timeout=120)


def _video(path: Path) -> tuple[int, tuple[int, int], np.ndarray, bool]:
    """Frame count, size, first frame (RGB) and whether there is an audio track."""
    with av.open(str(path)) as container:
        has_audio = bool(container.streams.audio)
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    height, width = frames[0].shape[:2]
    return len(frames), (width, height), frames[0], has_audio


def test_text_to_video_saves_the_mp4(cli_service: Service, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    with cli_service.client() as client:  # a job ahead, so this one waits in the queue
        ahead = client.post(f"/v2/{T2V}", json={"prompt": "sleep=1.5", "duration": "3"})
        assert ahead.status_code == 200
    done = _generate(cli_service, "sleep=2 a lighthouse", "--duration", "3", "--aspect", "9:16",
                     "--no-audio", "--seed", "3", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out)
    # Off a terminal the progress is one line per change: queue position, then percent.
    lines = done.stderr.splitlines()
    assert "queued (position 1) 0%" in lines
    assert any(re.fullmatch(r"processing.* ([1-9]\d?)%", line) for line in lines), lines
    assert lines[-1] == "completed 100%"
    frames, size, _, has_audio = _video(out)
    assert (frames, size, has_audio) == (72, (1080, 1920), False)


def test_image_to_video_uploads_a_local_png(cli_service: Service, tmp_path: Path) -> None:
    start = tmp_path / "start.png"
    start.write_bytes(png_bytes((1920, 1080), seed=4))
    done = _generate(cli_service, "the camera orbits", "--image", str(start),
                     "--duration", "3", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "kling-3-standard-image2video" in done.stderr
    saved = Path(done.stdout.strip())
    assert saved.parent == Path(".") and saved.suffix == ".mp4"  # REQUEST_ID.mp4 by default
    frames, size, first, has_audio = _video(tmp_path / saved)
    assert (frames, size, has_audio) == (72, (1920, 1080), True)
    from PIL import Image

    expected = np.asarray(Image.open(start).convert("RGB"), dtype=np.float32)
    # The fixture engine starts from the picture (plus a small moving square).
    assert np.abs(first[100:].astype(np.float32) - expected[100:]).mean() < 12


def test_a_wrong_key_exits_2(cli_service: Service, tmp_path: Path) -> None:
    done = _generate(cli_service, "a lighthouse", "-o", str(tmp_path / "x.mp4"), key="rs_wrong")
    assert done.returncode == 2
    assert "invalid API key" in done.stderr and "REELSERVE_API_KEY" in done.stderr


def test_a_bad_duration_exits_1(cli_service: Service, tmp_path: Path) -> None:
    done = _generate(cli_service, "a lighthouse", "--duration", "42")
    assert done.returncode == 1 and "duration" in done.stderr
    assert _generate(cli_service, "a lighthouse", "--duration", "five").returncode == 1
    missing = _generate(cli_service, "x", "--image", str(tmp_path / "nope.png"))
    assert missing.returncode == 1 and "nope.png: no such file" in missing.stderr


def test_a_failed_job_exits_3(cli_service: Service) -> None:
    done = _generate(cli_service, "fail", "--duration", "3")
    assert done.returncode == 3 and "told to fail" in done.stderr


def test_not_enough_credits_exits_6_and_no_server_exits_5(cli_service: Service) -> None:
    poor = cli_service.create_key("--credits", "0.01")
    assert _generate(cli_service, "a lighthouse", key=poor).returncode == 6
    nowhere = subprocess.run(
        [sys.executable, "-m", "reelserve", "generate", "x", "--server",
         f"http://127.0.0.1:{free_port()}", "--api-key", "rs_x"],
        env=_env(cli_service), capture_output=True, text=True, timeout=60)
    assert nowhere.returncode == 5 and "cannot reach" in nowhere.stderr


def test_timeout_exits_4_and_ctrl_c_cancels_and_exits_130(cli_service: Service) -> None:
    late = _generate(cli_service, "sleep=30 a long night", "--duration", "3", "--timeout", "1")
    assert late.returncode == 4
    late_id = re.search(r"request id: (\S+)", late.stderr)
    assert late_id is not None
    with cli_service.client() as client:
        assert client.post(f"/v2/requests/{late_id.group(1)}/cancel").status_code == 200

    process = subprocess.Popen(
        [sys.executable, "-m", "reelserve", "generate", "sleep=30 until interrupted",
         "--duration", "3"],
        env=_env(cli_service), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    line = process.stderr.readline()
    found = re.match(r"request (\S+) ", line)
    assert found is not None, line
    request_id = found.group(1)
    cli_service.wait_for(request_id, ("PROCESSING",), timeout=20)
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    assert process.wait(30) == 130
    status = cli_service.wait_for(request_id, ("FAILED",), timeout=10)
    assert status["canceled"] is True and status["error"] == "canceled"
    process.stderr.close()
    assert process.stdout is not None
    process.stdout.close()


def test_rate_limited_exits_7(tmp_path: Path) -> None:
    service = make_service(tmp_path, rate_limit=1, rate_window_s=86400)
    try:
        first = _generate(service, "sleep=0 a lighthouse", "--duration", "3", "--no-audio",
                          "-o", str(tmp_path / "first.mp4"))
        assert first.returncode == 0, first.stderr
        limited = _generate(service, "a lighthouse", "-o", str(tmp_path / "second.mp4"))
        assert limited.returncode == 7
        assert "rate limit" in limited.stderr
    finally:
        service.stop()
