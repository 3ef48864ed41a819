"""The real `reelserve` binary against a real server: get, download, every contract
parameter of generate, local image checks, and the request id whenever it stops early."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import av
import pytest

from reelserve.jobs import Job

from cli_binary import command
from conftest import T2V, Service, free_port, make_service


@pytest.fixture(scope="module")
def cli_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    svc = make_service(tmp_path_factory.mktemp("cli-requests"), rate_limit=0, lease_s=2)
    yield svc
    svc.stop()


def run(service: Service, *args: str, cwd: Path | None = None,
        server: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELSERVE_")}
    env["REELSERVE_SERVER"] = server or service.base_url
    env["REELSERVE_API_KEY"] = service.api_key
    return subprocess.run(command(*args), env=env, capture_output=True, text=True, cwd=cwd,
                          timeout=120)


def _request_id(stderr: str) -> str:
    found = re.search(r"request id: (\S+)", stderr) or re.search(r"request (\S+) \(", stderr)
    assert found is not None, stderr
    return found.group(1)


def _job(service: Service, request_id: str) -> Job:
    store = service.store()
    try:
        job = store.get_job(request_id)
    finally:
        store.close()
    assert job is not None
    return job


def _frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_every_contract_parameter_reaches_the_request(cli_service: Service,
                                                      tmp_path: Path) -> None:
    done = run(cli_service, "generate", "two shots", "--shot", "3:a boat at dawn",
               "--shot", "3:a boat at dusk", "--shot-type", "intelligent",
               "--negative-prompt", "no birds", "--cfg-scale", "0.8", "--aspect", "1:1",
               "--seed", "11", "--no-audio", "-o", str(tmp_path / "shots.mp4"))
    assert done.returncode == 0, done.stderr
    assert _frames(tmp_path / "shots.mp4") == 6 * 24  # the shots' durations add up
    params = _job(cli_service, _request_id(done.stderr)).params
    assert [(shot.prompt, shot.duration) for shot in params.shots] == \
        [("a boat at dawn", 3), ("a boat at dusk", 3)]
    assert (params.shot_type, params.negative_prompt, params.cfg_scale, params.aspect_ratio,
            params.seed, params.generate_audio) == \
        ("intelligent", "no birds", 0.8, "1:1", 11, False)


def test_shots_from_a_json_file(cli_service: Service, tmp_path: Path) -> None:
    shots = tmp_path / "shots.json"
    shots.write_text(json.dumps([{"prompt": "a forest", "duration": "3"},
                                 {"prompt": "a lake", "duration": 4}]))
    done = run(cli_service, "generate", "two places", "--shots-file", str(shots),
               "-o", str(tmp_path / "file.mp4"))
    assert done.returncode == 0, done.stderr
    assert _job(cli_service, _request_id(done.stderr)).params.duration == 7


@pytest.mark.parametrize(("args", "message"), [
    (("--shot", "a boat"), '"SECONDS:PROMPT"'),
    (("--shot", "3:a", "--shots-file", "x.json"), "not both"),
    (("--shots-file", "missing.json"), "--shots-file missing.json"),
    (("--end-image", "end.png"), "need --image"),
])
def test_bad_shots_and_options_exit_1_locally(cli_service: Service, tmp_path: Path,
                                              args: tuple[str, ...], message: str) -> None:
    done = run(cli_service, "generate", "x", *args, cwd=tmp_path)
    assert done.returncode == 1 and message in done.stderr, done.stderr


def test_a_file_that_is_not_an_image_exits_1_without_echoing_it(cli_service: Service,
                                                                 tmp_path: Path) -> None:
    secret = "rs_ThisIsASecretKeyNobodyMaySee0123456789"
    key_file = tmp_path / "key.txt"
    key_file.write_text(secret + "\n")
    store = cli_service.store()
    key_id = store.list_keys()[0].id
    before = len(store.list_jobs(key_id, 100))
    done = run(cli_service, "generate", "x", "--image", str(key_file))
    assert done.returncode == 1
    assert "key.txt: not an image" in done.stderr
    output = done.stdout + done.stderr
    assert secret not in output and base64.b64encode(secret.encode()).decode()[:12] not in output
    assert len(store.list_jobs(key_id, 100)) == before  # nothing reached the server
    store.close()
    missing = run(cli_service, "generate", "x", "--image", str(tmp_path / "nope.png"))
    assert missing.returncode == 1 and "nope.png: no such file" in missing.stderr


def test_get_shows_state_output_and_cost_and_download_saves_the_mp4(
        cli_service: Service, tmp_path: Path) -> None:
    with cli_service.client() as client:
        request_id = client.post(f"/v2/{T2V}", json={"prompt": "a boat", "duration": "3"}
                                 ).json()["request_id"]
    saved = run(cli_service, "download", request_id, "-o", str(tmp_path / "boat.mp4"))
    assert saved.returncode == 0, saved.stderr
    assert saved.stdout.strip() == str(tmp_path / "boat.mp4")
    assert _frames(tmp_path / "boat.mp4") == 72

    shown = run(cli_service, "get", request_id)
    assert shown.returncode == 0, shown.stderr
    assert f"request {request_id}: COMPLETED" in shown.stdout
    assert "/outputs/" in shown.stdout and "cost: 0.36 credits" in shown.stdout
    raw = run(cli_service, "get", request_id, "--json")
    assert json.loads(raw.stdout)["status"] == "COMPLETED"


def test_get_of_a_failed_or_unknown_request(cli_service: Service, tmp_path: Path) -> None:
    with cli_service.client() as client:
        request_id = client.post(f"/v2/{T2V}", json={"prompt": "fail", "duration": "3"}
                                 ).json()["request_id"]
    cli_service.wait_for(request_id)
    failed = run(cli_service, "get", request_id)
    assert failed.returncode == 3 and "FAILED: the fixture engine was told to fail" in \
        failed.stdout
    assert run(cli_service, "download", request_id, cwd=tmp_path).returncode == 3
    unknown = run(cli_service, "get", "no-such-request")
    assert unknown.returncode == 1 and "no-such-request" in unknown.stderr


def test_download_waits_for_a_running_request(cli_service: Service, tmp_path: Path) -> None:
    with cli_service.client() as client:
        request_id = client.post(f"/v2/{T2V}", json={"prompt": "sleep=2 a boat",
                                                     "duration": "3"}).json()["request_id"]
    running = run(cli_service, "get", request_id)
    assert running.returncode == 0 and re.search(r"(QUEUED|PROCESSING)", running.stdout)
    saved = run(cli_service, "download", request_id, cwd=tmp_path)
    assert saved.returncode == 0, saved.stderr
    assert (tmp_path / f"{request_id}.mp4").exists()


def test_a_connection_lost_after_completion_prints_the_request_id(tmp_path: Path) -> None:
    # The result's output URL points at a port nobody listens on: the download fails
    # after the request has completed, as when the connection drops at that moment.
    svc = make_service(tmp_path, public_url=f"http://127.0.0.1:{free_port()}")
    try:
        done = run(svc, "generate", "a boat", "--duration", "3", cwd=tmp_path)
        assert done.returncode == 5
        request_id = _request_id(done.stderr)
        assert f"reelserve download {request_id}" in done.stderr
        assert svc.wait_for(request_id)["status"] == "COMPLETED"
    finally:
        svc.stop()
