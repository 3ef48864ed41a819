"""`reelserve serve --engine ltx2 --model-path`, `reelserve models`, and clear startup errors."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from segmind import SegmindClient
from test_ltx2_engine import probe
from tiny_ltx2 import save_tiny_ltx2

from conftest import T2V, Service, free_port, process_env


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_ltx2(tmp_path_factory.mktemp("tiny-ltx2"))


class CliService(Service):
    """A `reelserve serve` started with command-line options rather than settings."""

    def __init__(self, data_dir: Path, args: list[str]) -> None:
        super().__init__(data_dir, free_port(), {"ltx2_long_side": 128, "ltx2_steps": 2,
                                                 "rate_limit": 0})
        self.args = args

    def start(self, workers: int = 1) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "reelserve", "serve", "--port", str(self.port),
             "--data-dir", str(self.data_dir), *self.args],
            env=process_env(self.data_dir, **self.settings),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("rs_"):
                self.api_key = line.strip()
            if line.startswith("Serving on"):
                break
        self._drain()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # uvicorn listens a moment after the banner
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError("serve did not answer /healthz:\n" + "".join(self.output))


@pytest.fixture
def served(tmp_path: Path, tiny_model: Path) -> Iterator[Service]:
    svc = CliService(tmp_path / "data", ["--engine", "ltx2", "--model-path", str(tiny_model)])
    svc.start()
    yield svc
    svc.stop()


def test_serve_with_model_path_completes_a_segmind_sdk_job(served: Service) -> None:
    sdk = SegmindClient(base_url=f"{served.base_url}/v1", api_key=served.api_key)
    try:
        job = sdk.submit_async(T2V, prompt="a robot dancing in the city", duration="3",
                               aspect_ratio="16:9", generate_audio=True)
        result = job.wait(timeout=120, interval=0.5)
        assert result["status"] == "COMPLETED"
        assert result["metrics"]["engine"] == "ltx2"
        video = sdk._client.get(result["output"])
    finally:
        sdk._client.close()
    found = probe(video.content)
    assert (found["size"], found["frames"]) == ((1920, 1080), 72)
    assert found["audio"] == ("aac", 2, 48_000)


def _reelserve(tmp_path: Path, *args: str, **settings: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reelserve", *args],
                          env=process_env(tmp_path / "data", **settings),
                          capture_output=True, text=True, timeout=120)


def test_missing_weights_stop_the_worker_with_the_command_that_fixes_it(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    done = _reelserve(tmp_path, "worker", "--engine", "ltx2", model_path=missing)
    output = done.stdout + done.stderr
    assert done.returncode == 3, output
    assert str(missing) in output and "reelserve models pull ltx-2" in output
    assert "Traceback" not in output


def test_no_weights_installed_names_models_pull(tmp_path: Path) -> None:
    done = _reelserve(tmp_path, "worker", "--engine", "ltx2")
    output = done.stdout + done.stderr
    assert done.returncode == 3, output
    assert "reelserve models pull ltx-2" in output and "Traceback" not in output


def test_missing_torch_names_the_install_command(tmp_path: Path) -> None:
    hidden = tmp_path / "hide-torch"
    hidden.mkdir()
    (hidden / "torch.py").write_text('raise ImportError("No module named torch (hidden)")\n')
    env = process_env(tmp_path / "data", model_path=tmp_path)
    env["PYTHONPATH"] = f"{hidden}:{env['PYTHONPATH']}"
    done = subprocess.run([sys.executable, "-m", "reelserve", "worker", "--engine", "ltx2"],
                          env=env, capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 3, output
    assert "pip install torch diffusers" in output and "Traceback" not in output


def test_an_incompatible_transformers_is_one_line_and_exit_3(tmp_path: Path,
                                                             tiny_model: Path) -> None:
    hidden = tmp_path / "old-transformers"
    hidden.mkdir()
    # Not an ImportError: what a transformers too old for diffusers' LTX-2 classes raises.
    missing = "module transformers has no attribute Gemma3ForConditionalGeneration"
    (hidden / "transformers.py").write_text(f"raise AttributeError({missing!r})\n")
    env = process_env(tmp_path / "data", model_path=tiny_model)
    env["PYTHONPATH"] = f"{hidden}:{env['PYTHONPATH']}"
    done = subprocess.run([sys.executable, "-m", "reelserve", "worker", "--engine", "ltx2"],
                          env=env, capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 3, output
    assert "Gemma3ForConditionalGeneration" in output and "pip install torch diffusers" in output
    assert "Traceback" not in output


def test_models_list_shows_installed_models(tmp_path: Path, tiny_model: Path) -> None:
    empty = _reelserve(tmp_path, "models", "list")
    assert empty.returncode == 0 and "reelserve models pull ltx-2" in empty.stdout
    listed = _reelserve(tmp_path, "models", "list", model_path=tiny_model)
    assert listed.returncode == 0, listed.stderr
    assert "distilled" in listed.stdout and "LTX2Pipeline" in listed.stdout
    assert "8+3" in listed.stdout  # base and refine steps, read from the model's files


def test_models_pull_offline_is_a_clear_error(tmp_path: Path) -> None:
    env = process_env(tmp_path / "data")
    env["HF_HUB_OFFLINE"] = "1"
    done = subprocess.run([sys.executable, "-m", "reelserve", "models", "pull", "ltx-2",
                           "--variant", "distilled"],
                          env=env, capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "rootonchair/LTX-2-19b-distilled" in output and "Traceback" not in output


def test_models_pull_full_is_the_official_repository_offline_error(tmp_path: Path) -> None:
    env = process_env(tmp_path / "data")
    env["HF_HUB_OFFLINE"] = "1"
    done = subprocess.run([sys.executable, "-m", "reelserve", "models", "pull", "ltx-2"],
                          env=env, capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Resolving Lightricks/LTX-2 at main" in output and "Traceback" not in output


def test_pull_takes_exactly_the_components_used() -> None:
    from reelserve.model_store import VARIANTS

    full = VARIANTS["ltx-2"]
    assert full.repo_id.startswith("Lightricks/") and full.official
    assert "*/*" not in full.allow and "latent_upsampler/*" in full.allow
    assert "ltx-2-19b-distilled-lora-384.safetensors" in full.allow
    assert all(variant.revision for variant in VARIANTS.values())


def _plan(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return _reelserve(tmp_path, "models", "plan", *args)


def test_models_plan_json_has_the_issue_keys(tmp_path: Path) -> None:
    import json

    done = _plan(tmp_path, "--variant", "distilled", "--gpu-memory", "80", "--aspect", "9:16",
                 "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    plan = json.loads(done.stdout)
    assert set(plan) == {"output", "stages", "keyframes", "params", "dtype", "placement",
                         "storage", "peak_gpu_gib", "tflops"}
    assert plan["output"] == {"width": 1080, "height": 1920, "frames": 120, "fps": 24}
    assert [(s["name"], s["width"], s["height"], s["latent_frames"], s["steps"])
            for s in plan["stages"]] == [("base", 544, 960, 16, 8),
                                         ("upsample", 1088, 1920, 16, 0),
                                         ("refine", 1088, 1920, 16, 3)]
    assert plan["keyframes"] == [0, 119]
    assert set(plan["params"]) == {"transformer", "text_encoder", "vae", "audio_vae", "vocoder",
                                   "connectors", "latent_upsampler"}
    assert plan["placement"]["transformer"] == "gpu" and plan["dtype"] == "bfloat16"
    assert plan["peak_gpu_gib"] <= 80 and plan["tflops"] > 1000


def test_models_plan_for_ltx_2_5_says_its_configs_are_not_packaged(tmp_path: Path) -> None:
    done = _plan(tmp_path, "--version", "2.5", "--gpu-memory", "80")
    assert done.returncode == 2
    assert "LTX-2.5's component configs are not packaged" in done.stdout
    assert "latent upsampler" in done.stdout and "--version 2.3" in done.stdout


def test_models_plan_that_cannot_fit_exits_non_zero_naming_the_gib(tmp_path: Path) -> None:
    done = _plan(tmp_path, "--gpu-memory", "6")
    assert done.returncode == 1
    assert "needs at least" in done.stdout and "GiB" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_models_pull_refuses_an_unknown_variant(tmp_path: Path) -> None:
    done = _reelserve(tmp_path, "models", "pull", "ltx-2", "--variant", "huge")
    assert done.returncode == 1 and "unknown variant 'huge'" in done.stdout
